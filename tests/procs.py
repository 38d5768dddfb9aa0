"""Whether a process the test did not start itself (a grandchild, a reparented worker) is gone."""

from __future__ import annotations

import time
from pathlib import Path


def pid_state(pid: int) -> str | None:
    """The state letter of ``pid`` (Z: a zombie), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (or a dead task its parent is reaping)."""
    return pid_state(pid) not in (None, "Z", "X")


def gone(pid: int, *, within: float = 5.0) -> bool:
    """``pid`` is gone or a zombie, within ``within`` s: SIGKILL is delivered at once, but a
    busy machine can take a moment to finish the exit of a process that is not our child (its
    pipes are closed before its state turns to Z, so a reader can see EOF while it still runs)."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
