"""Running commands: the one port (``Runner``) every Node step goes through, and its errors.

Tests pass a fake runner that records argv, cwd and environment; the real one is
:func:`run_command`. A failed command becomes one :class:`BuilderError` with the tail of its
output, wrapped here and nowhere else.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from builder.errors import BuilderError

TAIL_LINES = 25


class Runner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]: ...


def run_command(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run with output captured (stderr folded into stdout, in order)."""
    try:
        return subprocess.run(list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              check=False)
    except OSError as exc:
        raise BuilderError(f"cannot run {argv[0]}: {exc}", where=str(cwd)) from exc


def run_checked(
    runner: Runner, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], what: str
) -> subprocess.CompletedProcess[str]:
    proc = runner(argv, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise command_failure(proc, what=what, where=str(cwd))
    return proc


def command_failure(proc: subprocess.CompletedProcess[str], *, what: str,
                    where: str) -> BuilderError:
    text = "\n".join(part for part in (proc.stdout, proc.stderr) if part)
    lines = [line for line in text.splitlines() if line.strip()]
    tail = "\n".join(f"  | {line}" for line in lines[-TAIL_LINES:])
    return BuilderError(f"{what} failed (exit code {proc.returncode}):\n{tail}", where=where)
