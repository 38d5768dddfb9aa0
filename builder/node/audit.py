"""Which glibc and libstdc++ the ELF files of a Node.js tree need, and for which platform.

Every ELF is read with :func:`builder.elf.read_elf` (GLIBC_x.y versions, DT_NEEDED) plus the
ELF header's OS ABI and the ``GLIBCXX_``/``CXXABI_`` versions it needs from libstdc++. A file
is for the *target* when its arch matches and it is neither a FreeBSD (OS ABI) nor a musl
(``libc.musl-*``/``ld-musl-*``) build; other files can never load there and are trimmed.

The policy the build enforces on target files not exempted by the recipe:
- no ``GLIBC_x.y`` above the recipe's glibc floor;
- no ``libstdc++.so.6`` (a module built by zig links libc++ statically).
The runtime's own ``node`` links libstdc++.so.6 dynamically; its GLIBCXX needs are reported
(``runtime_glibcxx``) as a requirement on the image, like the glibc floor.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from builder.elf import is_elf, read_elf
from builder.elf.read import LIBSTDCXX, format_version, read_elf_extras
from builder.errors import BuilderError
from builder.recipe.node import Exemption

_FOREIGN_OSABI = frozenset({"ELFOSABI_FREEBSD", "ELFOSABI_NETBSD", "ELFOSABI_OPENBSD",
                            "ELFOSABI_SOLARIS"})


class Platform(StrEnum):
    TARGET = "target"
    OTHER_ARCH = "other-arch"
    OTHER_OS = "other-os"  # FreeBSD & co.
    MUSL = "musl"


class Verdict(StrEnum):
    OK = "ok"
    EXEMPT = "exempt"
    FOREIGN = "foreign"  # for another platform: trimmed, never loaded
    GLIBC_TOO_NEW = "glibc-too-new"
    NEEDS_LIBSTDCXX = "needs-libstdc++"


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeFile:
    path: str  # POSIX, relative to the audited root
    size: int
    arch: str
    platform: Platform
    glibc: tuple[int, ...] | None  # highest GLIBC_x.y needed
    glibcxx: tuple[int, ...] | None  # highest GLIBCXX_x.y.z needed from libstdc++
    needed: tuple[str, ...]
    has_debug: bool  # carries .debug_* sections
    verdict: Verdict
    reason: str = ""  # why exempt, or what is wrong

    @property
    def needs_libstdcxx(self) -> bool:
        return LIBSTDCXX in self.needed


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeAudit:
    root: Path
    glibc_floor: tuple[int, ...]  # the recipe's
    files: tuple[NativeFile, ...]  # sorted by path

    def of(self, verdict: Verdict) -> tuple[NativeFile, ...]:
        return tuple(f for f in self.files if f.verdict is verdict)

    @property
    def violations(self) -> tuple[NativeFile, ...]:
        return tuple(f for f in self.files
                     if f.verdict in (Verdict.GLIBC_TOO_NEW, Verdict.NEEDS_LIBSTDCXX))

    @property
    def computed_floor(self) -> tuple[int, ...] | None:
        """The highest GLIBC_x.y over the counted target files (the manifest's floor)."""
        versions = [f.glibc for f in self.files
                    if f.verdict is Verdict.OK and f.glibc is not None]
        return max(versions) if versions else None

    def check(self) -> None:
        """Raise one error listing every violation."""
        bad = self.violations
        if bad:
            lines = "\n".join(f"  {f.path}: {f.reason}" for f in bad)
            raise BuilderError(
                f"{len(bad)} native file{'s' if len(bad) != 1 else ''} would not run on glibc "
                f"{format_version(self.glibc_floor)} without libstdc++:\n{lines}",
                where=str(self.root),
                hint="build it from source with the zig toolchain, drop the prebuilt file "
                "(node.drop), or exempt it with a reason (node.exempt)",
            )


def _platform(arch: str, osabi: str, needed: tuple[str, ...], interp: str | None,
              target_arch: str) -> Platform:
    if arch != target_arch:
        return Platform.OTHER_ARCH
    if osabi in _FOREIGN_OSABI or "libc.so.7" in needed:
        return Platform.OTHER_OS
    if any(n.startswith("libc.musl-") for n in needed) or (interp and "ld-musl" in interp):
        return Platform.MUSL
    return Platform.TARGET


def read_native(path: Path, *, rel: str, target_arch: str) -> NativeFile:
    info = read_elf(path)
    extras = read_elf_extras(path)
    return NativeFile(
        path=rel, size=path.stat().st_size, arch=info.arch,
        platform=_platform(info.arch, extras.osabi, info.needed, info.interpreter,
                           target_arch),
        glibc=info.max_glibc, glibcxx=extras.glibcxx, needed=info.needed,
        has_debug=extras.has_debug,
        verdict=Verdict.OK,
    )


def judge(file: NativeFile, *, glibc_floor: tuple[int, ...],
          exemptions: Iterable[Exemption]) -> NativeFile:
    """The file with its verdict under the policy in the module doc."""
    if file.platform is not Platform.TARGET:
        return replace(file, verdict=Verdict.FOREIGN, reason=f"built for {file.platform}")
    for exemption in exemptions:
        if fnmatch.fnmatchcase(file.path, exemption.pattern) or fnmatch.fnmatchcase(
                file.path, exemption.pattern + "/*"):
            return replace(file, verdict=Verdict.EXEMPT, reason=exemption.reason)
    if file.glibc is not None and file.glibc > glibc_floor:
        return replace(file, verdict=Verdict.GLIBC_TOO_NEW,
                       reason=f"needs GLIBC_{format_version(file.glibc)} "
                       f"(floor {format_version(glibc_floor)})")
    if file.needs_libstdcxx:
        need = f" (GLIBCXX_{format_version(file.glibcxx)})" if file.glibcxx else ""
        return replace(file, verdict=Verdict.NEEDS_LIBSTDCXX, reason=f"needs {LIBSTDCXX}{need}")
    return file


def elf_files(root: Path) -> list[Path]:
    """Every regular ELF file under ``root`` (symlinks not followed), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not path.is_symlink() and path.is_file() and is_elf(path):
                found.append(path)
    return found


def audit_tree(root: Path, *, target_arch: str, glibc_floor: tuple[int, ...],
               exemptions: Iterable[Exemption] = ()) -> TreeAudit:
    exempt = tuple(exemptions)
    files = [
        judge(read_native(p, rel=p.relative_to(root).as_posix(), target_arch=target_arch),
              glibc_floor=glibc_floor, exemptions=exempt)
        for p in elf_files(root)
    ]
    return TreeAudit(root=root, glibc_floor=glibc_floor,
                     files=tuple(sorted(files, key=lambda f: f.path)))


def runtime_glibcxx(node: Path) -> tuple[int, ...] | None:
    """The highest GLIBCXX version the runtime's ``node`` binary needs (None: no libstdc++)."""
    return read_elf_extras(node).glibcxx
