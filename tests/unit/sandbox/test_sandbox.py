"""The build-time command environment: what leaks in, bounds, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import sandbox as sb


def test_env_keeps_nothing_of_the_caller_but_the_terminal(tmp_path: Path) -> None:
    base = {"PATH": "/venv/bin:/usr/bin", "PYTHONPATH": "/x", "PIP_INDEX_URL": "http://x",
            "VIRTUAL_ENV": "/venv", "JUPYTER_PATH": "/j", "HOME": "/root", "TERM": "xterm",
            "LD_LIBRARY_PATH": "/l", "CONDA_PREFIX": "/c"}
    env = sb.sandbox_env(home=tmp_path, path=[tmp_path / "bin"], source_date_epoch=7,
                         base=base)
    assert env["PATH"] == f"{tmp_path}/bin:/usr/local/bin:/usr/bin:/bin"
    assert env["HOME"] == str(tmp_path) and env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["SOURCE_DATE_EPOCH"] == "7" and env["PYTHONHASHSEED"] == "0"
    assert env["PIP_CONFIG_FILE"] == "/dev/null" and env["PIP_NO_INDEX"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONNOUSERSITE"] == "1"
    assert env["TERM"] == "xterm"
    for leaked in ("PYTHONPATH", "PIP_INDEX_URL", "VIRTUAL_ENV", "JUPYTER_PATH",
                   "LD_LIBRARY_PATH", "CONDA_PREFIX"):
        assert leaked not in env


def test_sandbox_home_is_fresh_and_removed(tmp_path: Path) -> None:
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=tmp_path) as box:
        home = box.home
        assert home.parent == tmp_path and home.name.startswith("builder-home-")
        assert (home / "tmp").is_dir() and not any(p.name != "tmp" for p in home.iterdir())
    assert not home.exists() and list(tmp_path.iterdir()) == []


def test_run_captures_output_umask_and_env(tmp_path: Path) -> None:
    with sb.sandbox(path=(), source_date_epoch=5, offline=False, parent=None,
                    extra_env={"STEP": "one"}) as box:
        out = sb.run(box, ["sh", "-c", 'umask; echo "$STEP $SOURCE_DATE_EPOCH"; echo err >&2'],
                     cwd=tmp_path, timeout=30)
    assert out.returncode == 0
    assert out.output.split() == ["0022", "one", "5", "err"]


def test_a_command_past_its_bound_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box:
        out = sb.run(box, ["sh", "-c", f"(sleep 1; touch {marker}) & echo started; sleep 30"],
                     cwd=tmp_path, timeout=0.5)
    assert out.timed_out and out.returncode == 124 and "started" in out.output
    error = sb.failure(out, what="build step 1", where="r.toml")
    assert "did not finish within" in error.what and "  | started" in error.what
    import time
    time.sleep(1.5)
    assert not marker.exists()  # the background child died with its group


def test_failure_names_the_command_and_the_output_tail(tmp_path: Path) -> None:
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box:
        out = sb.run(box, ["sh", "-c", "for i in $(seq 1 40); do echo line$i; done; exit 3"],
                     cwd=tmp_path, timeout=30)
    error = sb.failure(out, what="build step 2", where="r.toml: build.steps[1]", hint="fix it")
    text = str(error)
    assert text.startswith("r.toml: build.steps[1]: build step 2 failed (exit code 3): sh -c")
    assert "  | line40" in text and "  | line16" in text and "line15" not in text
    assert text.endswith("hint: fix it")


def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box, \
            pytest.raises(sb.BuilderError, match="cannot run no-such-program-here"):
        sb.run(box, ["no-such-program-here"], cwd=tmp_path, timeout=5)


def test_background_stops_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    import time

    marker = tmp_path / "child-alive"
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box:
        # ends by itself after ~20 s: a broken stop_group must not leave it running forever
        script = (f"trap '' TERM; (trap '' TERM; sleep 1; touch {marker}) & "
                  "echo ready; for i in $(seq 200); do sleep 0.1; done")
        start = time.monotonic()
        with sb.background(box, ["sh", "-c", script], cwd=tmp_path, grace=0.3) as running:
            deadline = time.monotonic() + 10
            while "ready" not in running.outcome().output and time.monotonic() < deadline:
                time.sleep(0.05)
            assert running.poll() is None
            outcome = running.outcome()
            assert outcome.returncode == 124 and outcome.argv == ("sh", "-c", script)
        assert time.monotonic() - start < 5
    assert running.poll() == -9  # SIGKILL after the grace period
    time.sleep(1.3)
    assert not marker.exists()  # the ignoring child died with its group


def test_background_reports_an_early_exit_and_its_output(tmp_path: Path) -> None:
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box, \
            sb.background(box, ["sh", "-c", "echo bye; exit 3"], cwd=tmp_path) as running:
        running.proc.wait(timeout=10)
        assert running.poll() == 3
        assert running.outcome().output == "bye\n" and running.outcome().returncode == 3


def test_background_refuses_a_missing_program(tmp_path: Path) -> None:
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box, \
            pytest.raises(sb.BuilderError, match="cannot run no-such-server-here"), \
            sb.background(box, ["no-such-server-here"], cwd=tmp_path):
        pass


def test_background_asks_politely_first(tmp_path: Path) -> None:
    import time

    script = ("trap 'echo got TERM; exit 0' TERM; echo ready; "
              "for i in $(seq 200); do sleep 0.1; done")
    with sb.sandbox(path=(), source_date_epoch=0, offline=False, parent=None) as box, \
            sb.background(box, ["sh", "-c", script], cwd=tmp_path, grace=30) as running:
        deadline = time.monotonic() + 10
        while "ready" not in running.outcome().output and time.monotonic() < deadline:
            time.sleep(0.05)
        start = time.monotonic()
        sb.stop_group(running.proc, grace=30)
        assert time.monotonic() - start < 10  # SIGTERM, not the grace period and SIGKILL
        assert running.poll() == 0 and "got TERM" in running.outcome().output
