"""SIGTERM and Ctrl-C end a command through its cleanup, with 143 / 130 and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.cli.signals import run_stoppable

ROOT = Path(__file__).resolve().parents[3]


def test_sigterm_runs_the_cleanup_and_exits_143(capsys: pytest.CaptureFixture[str]) -> None:
    cleaned = []

    def main() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
            return 0
        finally:
            cleaned.append(True)

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert run_stoppable(main) == 143
    assert cleaned == [True]
    assert capsys.readouterr().err == "terminated\n"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> int:
        raise KeyboardInterrupt

    assert run_stoppable(main) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_normal_exit_code_passes_through() -> None:
    assert run_stoppable(lambda: 3) == 3


def test_the_command_line_program_exits_143_on_sigterm_without_a_traceback() -> None:
    """``python -m builder`` stopped while it waits (its command replaced by a sleep)."""
    code = ("import os, sys, time, builder.cli.main as m\n"
            "def slow(argv=None):\n"
            "    print('ready', flush=True); time.sleep(60); return 0\n"
            "m.main = slow\nm.entry()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err == "terminated\n"
