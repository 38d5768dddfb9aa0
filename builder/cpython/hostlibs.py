"""Finding a host's shared libraries the way its dynamic linker would (the I/O edge of vendoring).

Order: the requester's DT_RPATH (when it has no DT_RUNPATH), its DT_RUNPATH, the ``ldconfig -p``
cache, then the default and multiarch directories. ``LD_LIBRARY_PATH`` is ignored on purpose so
that an import does not depend on the caller's environment. Candidates of another architecture
are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.elf import ElfInfo, is_elf, read_elf
from builder.errors import BuilderError

MULTIARCH = {
    "x86_64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "i686": "i386-linux-gnu",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "armv7": "arm-linux-gnueabihf",
    "riscv64": "riscv64-linux-gnu",
}
_LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S.*)$")


def parse_ldconfig(text: str) -> dict[str, tuple[Path, ...]]:
    """``ldconfig -p`` output -> name -> paths in cache order (the first line is a header)."""
    cache: dict[str, list[Path]] = {}
    for line in text.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match:
            cache.setdefault(match.group(1), []).append(Path(match.group(3).strip()))
    return {name: tuple(paths) for name, paths in cache.items()}


def read_ldconfig_cache() -> dict[str, tuple[Path, ...]]:
    """The host's ``ldconfig -p``; empty when ldconfig is not available."""
    binary = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        return {}
    try:
        proc = subprocess.run([binary, "-p"], capture_output=True, text=True, check=False,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuilderError(f"cannot run ldconfig -p: {exc}", where=binary) from exc
    return parse_ldconfig(proc.stdout) if proc.returncode == 0 else {}


def default_dirs(arch: str) -> tuple[Path, ...]:
    multiarch = MULTIARCH.get(arch)
    dirs = [f"/lib/{multiarch}", f"/usr/lib/{multiarch}"] if multiarch else []
    dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    return tuple(Path(d) for d in dirs)


def expand_origin(entry: str, origin: Path) -> Path | None:
    """One RPATH entry with ``$ORIGIN`` expanded; None for entries using other tokens."""
    text = entry.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", str(origin))
    if "$" in text or not text.startswith("/"):
        return None
    return Path(text)


@dataclass(slots=True)
class HostLibraryFinder:
    """``LibraryFinder`` for the running host."""

    cache: Mapping[str, tuple[Path, ...]]
    _arch_of: dict[Path, str] = field(default_factory=dict)

    @classmethod
    def from_host(cls) -> HostLibraryFinder:
        return cls(read_ldconfig_cache())

    def _arch(self, path: Path) -> str | None:
        if path not in self._arch_of:
            self._arch_of[path] = read_elf(path).arch if is_elf(path) else ""
        return self._arch_of[path] or None

    def candidates(self, name: str, *, requester: ElfInfo) -> list[Path]:
        origin = requester.path.parent
        dirs: list[Path] = []
        if not requester.runpath:
            dirs += [d for e in requester.rpath if (d := expand_origin(e, origin))]
        dirs += [d for e in requester.runpath if (d := expand_origin(e, origin))]
        found = [d / name for d in dirs]
        found += list(self.cache.get(name, ()))
        found += [d / name for d in default_dirs(requester.arch)]
        return found

    def find(self, name: str, *, requester: ElfInfo) -> Path | None:
        for candidate in self.candidates(name, requester=requester):
            if candidate.is_file():
                real = candidate.resolve()
                if self._arch(real) == requester.arch:
                    return real
        return None
