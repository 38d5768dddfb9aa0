"""ELF search paths: classify RPATH/RUNPATH entries and check that DT_NEEDED resolves.

Pure: works on ``ElfInfo`` values (read through the ``ElfReader`` port) and a set of the tree's
file paths, so tests fabricate both without a real ELF file.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from builder.elf import ElfInfo, is_elf, read_elf
from builder.relocate.model import RpathEdit, RpathTag

# Libraries every glibc system provides, and the manylinux policies' system libraries.
SYSTEM_LIBRARIES = (
    "ld-linux*.so.*",
    "ld64.so.*",
    "libanl.so.1",
    "libc.so.6",
    "libcrypt.so.1",
    "libdl.so.2",
    "libm.so.6",
    "libmvec.so.1",
    "libnsl.so.1",
    "libpthread.so.0",
    "libresolv.so.2",
    "librt.so.1",
    "libutil.so.1",
    # manylinux (PEP 599/600 and auditwheel policy) whitelist
    "libGL.so.1",
    "libICE.so.6",
    "libSM.so.6",
    "libX11.so.6",
    "libXext.so.6",
    "libXrender.so.1",
    "libgcc_s.so.1",
    "libglib-2.0.so.0",
    "libgobject-2.0.so.0",
    "libgthread-2.0.so.0",
    "libstdc++.so.6",
)

_ORIGIN_PREFIXES = ("$ORIGIN", "${ORIGIN}")


class ElfReader(Protocol):
    """Port: the ELF facts of one file, or None when it is not an ELF file."""

    def read(self, path: Path) -> ElfInfo | None: ...


@dataclass(frozen=True, slots=True)
class PyelftoolsReader:
    """The real reader: magic check first (cheap), then pyelftools."""

    def read(self, path: Path) -> ElfInfo | None:
        return read_elf(path) if is_elf(path) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Roots:
    """Absolute locations that mean "inside the tree" when found in an RPATH entry."""

    inside: tuple[PurePosixPath, ...]  # the staged app root (as given and its realpath), final


def is_system_library(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SYSTEM_LIBRARIES)


def _inside(path: PurePosixPath, root: PurePosixPath) -> bool:
    return path == root or root in path.parents


def _tree_target(entry: str, elf: PurePosixPath, roots: Roots) -> PurePosixPath | None:
    """The app-relative directory an entry names, or None when it leads outside the tree."""
    for prefix in _ORIGIN_PREFIXES:
        if entry == prefix or entry.startswith(prefix + "/"):
            joined = posixpath.normpath(posixpath.join(str(elf.parent), entry[len(prefix) + 1 :]))
            return None if joined == ".." or joined.startswith("../") else PurePosixPath(joined)
    if not entry.startswith("/") or "$" in entry:
        return None  # relative to the cwd, or $LIB/$PLATFORM: never inside a read-only bundle
    absolute = PurePosixPath(posixpath.normpath(entry))
    for root in roots.inside:
        if _inside(absolute, root):
            return absolute.relative_to(root)
    return None


def _origin_entry(elf: PurePosixPath, target: PurePosixPath) -> str:
    relative = posixpath.relpath(str(target), str(elf.parent))
    return "$ORIGIN" if relative == "." else f"$ORIGIN/{relative}"


def plan_rpath(info: ElfInfo, elf: PurePosixPath, roots: Roots) -> RpathEdit | None:
    """The edit making every search-path entry ``$ORIGIN``-relative, or None if none is needed."""
    tag = RpathTag.RUNPATH if info.runpath else RpathTag.RPATH
    old = info.runpath or info.rpath
    new: list[str] = []
    removed: list[str] = []
    for entry in old:
        target = _tree_target(entry, elf, roots)
        if target is None:
            removed.append(entry)
            continue
        is_origin = entry.startswith(_ORIGIN_PREFIXES)
        kept = entry if is_origin else _origin_entry(elf, target)
        if kept not in new:
            new.append(kept)
    if tuple(new) == old:
        return None
    return RpathEdit(path=elf, tag=tag, old=old, new=tuple(new), removed=tuple(removed))


def search_dirs(elf: PurePosixPath, entries: tuple[str, ...], roots: Roots) -> tuple[str, ...]:
    """App-relative directories of (already planned) search-path entries."""
    dirs = (_tree_target(entry, elf, roots) for entry in entries)
    return tuple(str(d) for d in dirs if d is not None)


def unresolved_needed(
    elf: PurePosixPath,
    needed: tuple[str, ...],
    dirs: tuple[str, ...],
    files: Set[str],
    preloaded: Set[str],
) -> tuple[str, ...]:
    """DT_NEEDED names neither found in ``dirs`` of the tree, nor preloaded, nor system ones."""
    missing: list[str] = []
    for name in needed:
        if "/" in name:
            missing.append(name)
        elif is_system_library(name) or name in preloaded:
            continue
        elif not any(posixpath.normpath(posixpath.join(d, name)) in files for d in dirs):
            missing.append(name)
    return tuple(missing)


def plan_elves(
    infos: Mapping[PurePosixPath, ElfInfo],
    *,
    files: Set[str],
    roots: Roots,
    interpreter: PurePosixPath,
) -> tuple[tuple[RpathEdit, ...], tuple[str, ...]]:
    """Search-path edits for every ELF file and the warnings about what cannot be resolved.

    ``files`` holds every app-relative path in the tree (symlinks included). Libraries the
    interpreter executable itself loads from the tree count as resolved for everything else:
    the dynamic linker reuses an already loaded soname (libpython for extension modules).
    """
    edits: list[RpathEdit] = []
    warnings: list[str] = []
    searched: dict[PurePosixPath, tuple[str, ...]] = {}
    for elf, info in sorted(infos.items()):
        edit = plan_rpath(info, elf, roots)
        if edit is not None:
            edits.append(edit)
            warnings.extend(
                f"{elf}: removed search path entry {entry!r} (outside the app tree)"
                for entry in edit.removed
            )
        entries = edit.new if edit is not None else info.search_path
        searched[elf] = search_dirs(elf, entries, roots)
    preloaded: set[str] = set()
    if interpreter in infos:
        main = infos[interpreter]
        gone = unresolved_needed(interpreter, main.needed, searched[interpreter], files, set())
        preloaded = {n for n in main.needed if n not in gone}
    for elf, info in sorted(infos.items()):
        for name in unresolved_needed(elf, info.needed, searched[elf], files, preloaded):
            warnings.append(f"{elf}: needed library {name} is neither in the tree nor a system one")
    return tuple(edits), tuple(sorted(warnings))
