"""SIGTERM as an exception, so a stopped build cleans up like an interrupted one.

Python's default SIGTERM ends the process at once: no ``finally`` runs, staging trees and
``.tmp`` files stay, child process groups live on. Here SIGTERM raises :class:`Terminated`
(a ``BaseException``, like ``KeyboardInterrupt``) in the main thread; every cleanup on the way
out runs (children's groups are killed, owned scratch paths removed), then the process exits
143 (128 + SIGTERM), as a shell reports a process killed by it. Further SIGTERMs and SIGINTs
during that cleanup are ignored, so a second signal cannot cut it short.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType

TERMINATED_EXIT = 128 + signal.SIGTERM
INTERRUPTED_EXIT = 128 + signal.SIGINT


class Terminated(BaseException):
    """The process received SIGTERM."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    raise Terminated


def run_stoppable(main: Callable[[], int]) -> int:
    """``main()`` with SIGTERM turned into :class:`Terminated`; its exit code, or 143 (SIGTERM)
    or 130 (Ctrl-C) once the cleanup is done, with one line on stderr and no traceback."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return main()
    except Terminated:
        print("terminated", file=sys.stderr)
        return TERMINATED_EXIT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
