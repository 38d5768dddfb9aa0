"""Running a command: the port (``CommandRunner``) stages take, and the real runner."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from typing import Protocol


class CommandRunner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]: ...


def run_command(
    argv: Sequence[str], *, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)
