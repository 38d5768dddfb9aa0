"""The one command runner: output captured, time bound, group killed, clear errors."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from procs import gone

from builder.errors import BuilderError
from builder.tools.run import capture, command_failure, run_checked, run_command, run_in

ENV = {"PATH": os.environ["PATH"]}


def test_run_command_keeps_stderr_apart() -> None:
    proc = run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], env=ENV)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")


def test_run_in_folds_stderr_into_stdout_in_order(tmp_path: Path) -> None:
    proc = run_in(["sh", "-c", "echo a; echo b >&2; echo c; pwd"], cwd=tmp_path, env=ENV)
    assert proc.stdout == f"a\nb\nc\n{tmp_path}\n"
    assert proc.stderr is None


def test_time_bound_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # the child leaves a grandchild behind in its group; both must be gone afterwards, killed:
    # not waited for, as the grandchild holds the output pipe and would end by itself in 30 s
    start = time.monotonic()
    proc = capture(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], env=ENV, timeout=0.5)
    assert time.monotonic() - start < 15
    assert proc.returncode == 124
    grandchild = int(pidfile.read_text())
    assert gone(grandchild)


def test_a_command_that_cannot_start_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuilderError) as info:
        run_in([str(tmp_path / "no-such-tool")], cwd=tmp_path, env=ENV)
    assert info.value.what.startswith(f"cannot run {tmp_path / 'no-such-tool'}: ")
    assert info.value.where == str(tmp_path)


def test_a_failed_command_shows_its_output_tail(tmp_path: Path) -> None:
    script = "for i in $(seq 1 40); do echo line$i; done; exit 2"
    with pytest.raises(BuilderError) as info:
        run_checked(run_in, ["sh", "-c", script], cwd=tmp_path, env=ENV, what="the step")
    lines = info.value.what.splitlines()
    assert lines[0] == "the step failed (exit code 2):"
    assert lines[1:] == [f"  | line{i}" for i in range(16, 41)]  # the last 25


def test_failure_joins_stdout_and_stderr() -> None:
    proc = subprocess.CompletedProcess(["x"], 1, "out\n", "err\n")
    error = command_failure(proc, what="x", where="here")
    assert error.what == "x failed (exit code 1):\n  | out\n  | err"
