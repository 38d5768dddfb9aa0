"""The isolated environment every build-time command runs in: PEP 517 backends building an
sdist, the recipe's ``[build]`` steps and its ``[checks]``.

What a command sees is decided here and nowhere else:
- PATH: the given directories first (the bundle's ``python/bin``), then the system's ``/usr/bin``
  and ``/bin``; never the caller's PATH (a virtualenv, pyenv shims, ~/.local/bin);
- HOME, TMPDIR and the XDG directories inside a fresh temporary directory;
- no host Python or pip configuration: no ``PYTHON*``, ``PIP_*``, ``VIRTUAL_ENV``, ``CONDA_*``,
  ``JUPYTER_*`` variables, ``PIP_CONFIG_FILE=/dev/null``, ``PIP_NO_INDEX=1``,
  ``PYTHONNOUSERSITE=1``, ``PYTHONDONTWRITEBYTECODE=1`` (no timestamped ``.pyc`` in the tree;
  relocation compiles them reproducibly), ``PYTHONHASHSEED=0``;
- ``SOURCE_DATE_EPOCH``, ``TZ=UTC``, ``LC_ALL=C.UTF-8`` and umask 022, so tools that honour
  them write the same bytes every time;
- no network where a network namespace can be made (``unshare --net``, or ``unshare -rn``
  without root); where neither works the command runs with the network and the caller is told.

:func:`run` waits for a command within a time bound; :func:`background` starts one (a server
the build-time checks ask over loopback, so not offline) and stops its whole process group on
leaving: SIGTERM, SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

from builder.errors import BuilderError
from builder.tools.run import (
    STOP_GRACE,
    TAIL_LINES,
    TIMED_OUT,
    die_with_parent,
    output_tail,
    spawn,
    stop_group,
    wait,
)

# re-exported: the steps, checks and .pyc compilation start processes through this module
__all__ = ["SYSTEM_PATH", "Background", "Outcome", "Sandbox", "background", "die_with_parent",
           "failure", "network_isolation", "run", "sandbox", "sandbox_env", "stop_group"]
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
# variables from the caller that a build command may keep (terminal, proxy-free locale; where
# qemu-user finds the target's C library when building for another architecture)
KEPT = ("TERM", "QEMU_LD_PREFIX")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sandbox:
    """Where and how commands run; made by :func:`sandbox`."""

    home: Path  # a fresh directory, removed with the sandbox
    path: tuple[Path, ...]  # put first on PATH
    source_date_epoch: int
    offline: bool  # a network namespace is made for each command
    extra_env: tuple[tuple[str, str], ...] = ()

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return sandbox_env(home=self.home, path=self.path,
                           source_date_epoch=self.source_date_epoch,
                           extra={**dict(self.extra_env), **(extra or {})})

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped so it runs without network when that is possible."""
        prefix = network_isolation() if self.offline else None
        return [*(prefix or ()), *argv]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    argv: tuple[str, ...]
    returncode: int  # -N: killed by signal N; 124: the time bound passed
    output: str  # stdout and stderr, interleaved
    seconds: float
    timed_out: bool = False

    def tail(self, lines: int = TAIL_LINES) -> str:
        return output_tail(self.output, lines=lines, empty="  | (no output)")


def sandbox_env(*, home: Path, path: Sequence[Path], source_date_epoch: int,
                extra: Mapping[str, str] | None = None,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a build-time command (nothing else leaks in)."""
    source = os.environ if base is None else base
    env = {k: source[k] for k in KEPT if k in source}
    env.update({
        "PATH": os.pathsep.join([*(str(p) for p in path), *SYSTEM_PATH]),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(source_date_epoch),
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    })
    env.update(extra or {})
    return env


@contextmanager
def sandbox(*, path: Sequence[Path], source_date_epoch: int, offline: bool = True,
            parent: Path | None, extra_env: Mapping[str, str] | None = None
            ) -> Iterator[Sandbox]:
    """A sandbox with a fresh HOME under ``parent``, removed afterwards. A build passes its
    claimed staging directory, so the HOME of a build killed with SIGKILL (no ``finally`` runs)
    is collected with the stage by the next run; ``None`` (TMPDIR) is for callers outside a
    build."""
    home = Path(tempfile.mkdtemp(prefix="builder-home-", dir=parent))
    try:
        (home / "tmp").mkdir()
        yield Sandbox(home=home, path=tuple(path), source_date_epoch=source_date_epoch,
                      offline=offline, extra_env=tuple(sorted((extra_env or {}).items())))
    finally:
        shutil.rmtree(home, ignore_errors=True)


@cache
def network_isolation() -> tuple[str, ...] | None:
    """The prefix that runs a command in a new, empty network namespace here, or None."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (("unshare", "--net", "--"), ("unshare", "--map-root-user", "--net", "--")):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, check=False,
                                   timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


def _spawn(sandbox: Sandbox, argv: Sequence[str], *, cwd: Path,
           env: Mapping[str, str] | None, stdout: int | IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the sandbox: its environment, no network where possible, umask 022,
    stderr folded into ``stdout``, in a process group of its own (so it can be stopped whole),
    killed by the kernel if builder itself is killed."""
    return spawn(sandbox.argv(argv), cwd=cwd, env=sandbox.env(env), stdout=stdout,
                 stderr=subprocess.STDOUT, umask=0o022,
                 hint="is the command on the bundle's PATH (python/bin) or a path inside the "
                 "app?")


def run(sandbox: Sandbox, argv: Sequence[str], *, cwd: Path, timeout: float,
        env: Mapping[str, str] | None = None) -> Outcome:
    """Run ``argv`` in the sandbox; output captured, bounded in time (the whole process group
    is killed when the bound passes)."""
    start = time.monotonic()
    proc = _spawn(sandbox, argv, cwd=cwd, env=env, stdout=subprocess.PIPE)
    out, _, timed_out = wait(proc, timeout=timeout)
    return Outcome(argv=tuple(argv), returncode=TIMED_OUT if timed_out else proc.returncode,
                   output=out.decode("utf-8", "replace"), seconds=time.monotonic() - start,
                   timed_out=timed_out)


class Background:
    """A command running in the sandbox while the caller does something else (a server being
    asked); made by :func:`background`, which stops it."""

    def __init__(self, proc: subprocess.Popen[bytes], output: IO[bytes],
                 argv: tuple[str, ...]) -> None:
        self.proc = proc
        self.argv = argv
        self._output = output
        self._start = time.monotonic()

    def poll(self) -> int | None:
        """The exit code once the command ended (-N: killed by signal N), else None."""
        return self.proc.poll()

    def outcome(self, *, timed_out: bool = False) -> Outcome:
        """What it printed so far, and its exit code (124 while it still runs)."""
        self._output.flush()
        self._output.seek(0)
        text = self._output.read().decode("utf-8", "replace")
        code = self.proc.poll()
        return Outcome(argv=self.argv, returncode=TIMED_OUT if code is None else code, output=text,
                       seconds=time.monotonic() - self._start, timed_out=timed_out)


@contextmanager
def background(sandbox: Sandbox, argv: Sequence[str], *, cwd: Path,
               env: Mapping[str, str] | None = None,
               grace: float = STOP_GRACE) -> Iterator[Background]:
    """Start ``argv`` in the sandbox in its own process group, its output in an unlinked
    temporary file; on leaving, the whole group is stopped (:func:`stop_group`)."""
    with tempfile.TemporaryFile() as output:
        proc = _spawn(sandbox, argv, cwd=cwd, env=env, stdout=output)
        try:
            yield Background(proc, output, tuple(argv))
        finally:
            stop_group(proc, grace=grace)


def failure(outcome: Outcome, *, what: str, where: str, hint: str | None = None) -> BuilderError:
    """One error for a failed command: what, its exit status or time bound, its output tail."""
    if outcome.timed_out:
        status = f"did not finish within {outcome.seconds:.0f} s"
    elif outcome.returncode < 0:
        status = f"was killed by signal {-outcome.returncode}"
    else:
        status = f"failed (exit code {outcome.returncode})"
    command = " ".join(outcome.argv)
    return BuilderError(f"{what} {status}: {command}\n{outcome.tail()}", where=where, hint=hint)
