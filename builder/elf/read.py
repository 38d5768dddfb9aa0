"""Pure reading of ELF files with pyelftools."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

from builder.errors import BuilderError

ELF_MAGIC = b"\x7fELF"
_GLIBC_RE = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")

# e_machine -> the arch name used in target triples
MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64", "EM_386": "i686", "EM_PPC64": "ppc64le",
            "EM_S390": "s390x", "EM_ARM": "armv7", "EM_RISCV": "riscv64"}

_MACHINE_NAMES = {number: name for name, number in ENUM_E_MACHINE.items()
                  if isinstance(number, int)}
LIBSTDCXX = "libstdc++.so.6"
_CXX_RE = re.compile(r"^(GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ElfInfo:
    path: Path
    arch: str  # "x86_64", "aarch64", ... ("unknown:<EM>" otherwise)
    elf_type: str  # "ET_DYN", "ET_EXEC", ...
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED in file order
    rpath: tuple[str, ...]  # DT_RPATH entries
    runpath: tuple[str, ...]  # DT_RUNPATH entries
    interpreter: str | None  # PT_INTERP (executables)
    glibc_versions: tuple[tuple[int, ...], ...]  # every GLIBC_x.y this file requires, sorted

    @property
    def max_glibc(self) -> tuple[int, ...] | None:
        return self.glibc_versions[-1] if self.glibc_versions else None

    @property
    def search_path(self) -> tuple[str, ...]:
        """The directories the dynamic linker consults first (RUNPATH wins over RPATH)."""
        return self.runpath or self.rpath


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:  # noqa: PLR0912 (one pass over sections)
    """Read one ELF file; raises BuilderError for a corrupt file."""
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            arch = MACHINES.get(elf["e_machine"], f"unknown:{elf['e_machine']}")
            needed: list[str] = []
            rpath: list[str] = []
            runpath: list[str] = []
            soname: str | None = None
            versions: set[tuple[int, ...]] = set()
            interp: str | None = None
            for segment in elf.iter_segments():
                if segment["p_type"] == "PT_INTERP":
                    interp = segment.get_interp_name()  # type: ignore[attr-defined]
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)  # type: ignore[attr-defined]
                        elif tag.entry.d_tag == "DT_RPATH":
                            rpath.extend(p for p in tag.rpath.split(":") if p)  # type: ignore[attr-defined]
                        elif tag.entry.d_tag == "DT_RUNPATH":
                            runpath.extend(
                                p for p in tag.runpath.split(":") if p  # type: ignore[attr-defined]
                            )
                        elif tag.entry.d_tag == "DT_SONAME":
                            soname = tag.soname  # type: ignore[attr-defined]
                elif isinstance(section, GNUVerNeedSection):
                    for _verneed, auxiliaries in section.iter_versions():
                        for aux in auxiliaries:
                            match = _GLIBC_RE.match(aux.name)
                            if match:
                                versions.add(tuple(int(g) for g in match.groups() if g is not None))
            return ElfInfo(
                path=path,
                arch=arch,
                elf_type=str(elf["e_type"]),
                soname=soname,
                needed=tuple(needed),
                rpath=tuple(rpath),
                runpath=tuple(runpath),
                interpreter=interp,
                glibc_versions=tuple(sorted(versions)),
            )
    except (ELFError, ValueError, OSError) as exc:
        raise BuilderError(f"cannot read ELF file: {exc}", where=str(path)) from exc


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version)


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def glibc_floor(infos: Iterable[ElfInfo]) -> tuple[tuple[int, ...] | None, Path | None]:
    """The highest GLIBC_x.y any of the files needs, and one file that needs it."""
    best: tuple[int, ...] | None = None
    culprit: Path | None = None
    for info in infos:
        top = info.max_glibc
        if top is not None and (best is None or top > best):
            best, culprit = top, info.path
    return best, culprit


def elf_arch(path: Path) -> str | None:
    """The architecture in an ELF header (as in target triples), read from its first 20 bytes
    only; None if not ELF (or unreadable)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != ELF_MAGIC:
        return None
    (machine,) = struct.unpack("<H" if head[5] == 1 else ">H", head[18:20])
    name = _MACHINE_NAMES.get(machine, f"EM_{machine}")
    arch = MACHINES.get(name, f"unknown:{name}")
    if arch == "ppc64le" and head[5] != 1:
        return "ppc64"
    return arch


def highest_version_definition(path: Path, pattern: re.Pattern[str]) -> tuple[int, ...] | None:
    """The highest version among the GNU version definitions ``pattern`` matches (its group 1:
    ``x.y[.z]``), e.g. GLIBC_2.36 in libc.so.6 or GLIBCXX_3.4.30 in libstdc++.so.6; None when
    there is none or the file is not a readable ELF file."""
    best: tuple[int, ...] | None = None
    try:
        with path.open("rb") as fh:
            for section in ELFFile(fh).iter_sections():
                if isinstance(section, GNUVerDefSection):
                    for _verdef, auxiliaries in section.iter_versions():
                        for aux in auxiliaries:
                            if match := pattern.match(aux.name):
                                version = parse_version(match[1])
                                best = max(best or version, version)
    except (ELFError, OSError, ValueError, struct.error):
        return None
    return best


@dataclass(frozen=True, slots=True, kw_only=True)
class ElfExtras:
    """What an audit of native files needs beyond :class:`ElfInfo`."""

    osabi: str  # e_ident EI_OSABI, e.g. "ELFOSABI_SYSV"
    glibcxx: tuple[int, ...] | None  # the highest GLIBCXX_x.y needed from libstdc++.so.6
    has_debug: bool  # .debug_* / .zdebug_* sections present


def read_elf_extras(path: Path) -> ElfExtras:
    """OS ABI, highest GLIBCXX version needed, and whether debug sections are present;
    raises BuilderError for a corrupt file."""
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            osabi = str(elf["e_ident"]["EI_OSABI"])
            best: tuple[int, ...] | None = None
            debug = False
            for section in elf.iter_sections():
                if section.name.startswith((".debug_", ".zdebug_")):
                    debug = True
                if isinstance(section, GNUVerNeedSection):
                    for verneed, auxiliaries in section.iter_versions():
                        if verneed.name != LIBSTDCXX:
                            continue
                        for aux in auxiliaries:
                            match = _CXX_RE.match(aux.name)
                            if match and match.group(1) == "GLIBCXX":
                                version = tuple(int(p) for p in match.group(2).split("."))
                                best = version if best is None or version > best else best
            return ElfExtras(osabi=osabi, glibcxx=best, has_debug=debug)
    except (ELFError, ValueError, OSError) as exc:
        raise BuilderError(f"cannot read ELF file: {exc}", where=str(path)) from exc
