"""Running a command: the one place builder starts a child process and waits for it.

Every command (pip while locking and fetching, npm/node/zig for a Node app, PEP 517 backends,
recipe build steps and checks through :mod:`builder.sandbox`) is started by :func:`spawn`:
- in a process group of its own, so it can be stopped whole (:func:`kill_group`,
  :func:`stop_group`), and killed by the kernel if builder itself is killed (``PR_SET_PDEATHSIG``);
- waited for by :func:`capture`, output captured, optionally within a time bound; on Ctrl-C or
  SIGTERM (which ``builder.cli.signals`` turns into an exception) its whole group is killed
  before the exception goes on, so no child outlives the build;
- a command that cannot start is a :class:`BuilderError` naming it; a failed one becomes one
  error with the tail of its output (:func:`command_failure`, :func:`output_tail`).

Stages take the ports :class:`CommandRunner` / :class:`Runner`, so unit tests pass fakes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import IO, Protocol, cast

from builder.errors import BuilderError

TAIL_LINES = 25
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_GRACE = 5.0  # seconds a command has to end after SIGTERM
TIMED_OUT = 124  # the exit code reported when the time bound passed (as timeout(1) does)


class CommandRunner(Protocol):
    """Runs a command, stdout and stderr captured apart (pip: its errors are on stderr)."""

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]: ...


class Runner(Protocol):
    """Runs a command in a directory, stderr folded into stdout in order (npm, node, zig)."""

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]: ...


@cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), resolved once in the parent; None where there is none."""
    try:
        return cast("Callable[..., int]", ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):
        return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when builder dies, however builder
    dies (SIGKILL included: no cleanup of ours runs then); None where prctl is missing."""
    prctl = _prctl()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return preexec


def spawn(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
          stdout: int | IO[bytes] = subprocess.PIPE, stderr: int | IO[bytes] = subprocess.PIPE,
          umask: int = -1, hint: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a process group of its own, stdin closed, killed with builder."""
    try:
        return subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=stdout,
                                stderr=stderr, stdin=subprocess.DEVNULL,
                                start_new_session=True, umask=umask,
                                preexec_fn=die_with_parent())  # noqa: PLW1509 - prctl only
    except OSError as exc:
        raise BuilderError(f"cannot run {argv[0]}: {exc.strerror or exc}",
                           where=str(cwd or Path.cwd()), hint=hint) from exc


def wait(proc: subprocess.Popen[bytes], *, timeout: float | None) -> tuple[bytes, bytes, bool]:
    """Its output (stdout, stderr) once it ended, and whether the time bound passed (then its
    group was killed). Any exception on the way (Ctrl-C, SIGTERM) kills the group first."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        return out or b"", err or b"", True
    except BaseException:  # KeyboardInterrupt, cli.signals.Terminated: leave nothing behind
        kill_group(proc)
        proc.wait()
        raise
    return out or b"", err or b"", False


def capture(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
            merge: bool = False, timeout: float | None = None,
            hint: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end, output captured as text (``merge``: stderr folded into stdout,
    in order); past ``timeout`` seconds its group is killed and the exit code is 124."""
    proc = spawn(argv, env=env, cwd=cwd,
                 stderr=subprocess.STDOUT if merge else subprocess.PIPE, hint=hint)
    out, err, timed_out = wait(proc, timeout=timeout)
    return subprocess.CompletedProcess(
        list(argv), TIMED_OUT if timed_out else proc.returncode,
        out.decode("utf-8", "replace"), None if merge else err.decode("utf-8", "replace"))


def run_command(
    argv: Sequence[str], *, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """The real :class:`CommandRunner`."""
    return capture(argv, env=env)


def run_in(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """The real :class:`Runner`."""
    return capture(argv, env=env, cwd=cwd, merge=True)


def run_checked(
    runner: Runner, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], what: str
) -> subprocess.CompletedProcess[str]:
    proc = runner(argv, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise command_failure(proc, what=what, where=str(cwd))
    return proc


def output_tail(text: str, *, lines: int = TAIL_LINES, empty: str = "") -> str:
    """The last ``lines`` non-blank lines of ``text``, each indented as ``  | line``."""
    shown = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  | {line}" for line in shown) or empty


def command_failure(proc: subprocess.CompletedProcess[str], *, what: str,
                    where: str) -> BuilderError:
    text = "\n".join(part for part in (proc.stdout, proc.stderr) if part)
    return BuilderError(f"{what} failed (exit code {proc.returncode}):\n{output_tail(text)}",
                        where=where)


def stop_group(proc: subprocess.Popen[bytes], *, grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group ``proc`` leads, SIGKILL it after ``grace`` seconds (and
    whatever of the group outlived its leader), then reap the leader."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    kill_group(proc)
    proc.wait()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``proc`` leads (it was started in a new session)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
