"""Vendoring of shared libraries into an interpreter tree: an immutable plan, then one applier.

The plan is pure: it takes the ELF facts of the tree, a library finder and an ELF reader (ports),
and decides which host libraries to copy into ``python/lib`` and which RPATH every ELF gets.
glibc's own libraries are never vendored: the target image always provides them.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from builder.elf import ElfInfo, Patchelf
from builder.errors import BuilderError

LIBDIR = "python/lib"

# glibc's own libraries, by soname. libnsl.so.1 is glibc's; libnsl.so.2 comes from the separate
# libnsl/libtirpc packages and is vendored like any other library.
_GLIBC = re.compile(
    r"^(?:"
    r"(?:libc|libm|libpthread|libdl|librt|libutil|libresolv|libanl|libmvec|libBrokenLocale"
    r"|libthread_db|libc_malloc_debug|libmemusage|libpcprofile|libSegFault|libnss_[A-Za-z0-9_]+)"
    r"\.so(?:\.[0-9]+)*"
    r"|libnsl\.so\.1"
    r"|ld-linux[A-Za-z0-9_.-]*\.so(?:\.[0-9]+)*"
    r"|ld64\.so\.[0-9]+|ld\.so\.[0-9]+"
    r")$"
)
_PATCHABLE = ("ET_DYN", "ET_EXEC")


def is_glibc(soname: str) -> bool:
    """True for libraries that belong to glibc itself (never vendored)."""
    return _GLIBC.match(soname) is not None


class LibraryFinder(Protocol):
    """Finds a needed library the way the dynamic linker would for ``requester``."""

    def find(self, name: str, *, requester: ElfInfo) -> Path | None: ...


ElfReader = Callable[[Path], ElfInfo]


@dataclass(frozen=True, slots=True, kw_only=True)
class VendoredLib:
    name: str  # the DT_NEEDED name, also the file name under the libdir
    source: Path  # the host file (symlinks resolved)
    dest: str  # path inside the tree, e.g. "python/lib/libssl.so.3"
    needed_by: tuple[str, ...]  # tree paths or vendored names, sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class RpathEdit:
    path: str  # path inside the tree
    rpath: str  # e.g. "$ORIGIN/../lib"


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorPlan:
    libdir: str
    vendored: tuple[VendoredLib, ...]  # sorted by name
    rpath_edits: tuple[RpathEdit, ...]  # sorted by path; vendored libraries included
    system: tuple[str, ...]  # glibc libraries the tree needs from the target, sorted

    @property
    def vendored_names(self) -> tuple[str, ...]:
        return tuple(lib.name for lib in self.vendored)


def origin_rpath(path: str, libdir: str) -> str:
    """The ``$ORIGIN``-relative directory of ``libdir`` seen from the file at ``path``."""
    rel = posixpath.relpath(libdir, posixpath.dirname(path) or ".")
    return "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"


def _needs_rpath(info: ElfInfo) -> bool:
    return info.elf_type in _PATCHABLE and bool(info.needed or info.rpath or info.runpath)


def plan_vendoring(
    tree: Mapping[str, ElfInfo],
    *,
    provided: Iterable[str],
    finder: LibraryFinder,
    read: ElfReader,
    libdir: str = LIBDIR,
) -> VendorPlan:
    """Decide what to vendor and how to set every RPATH.

    ``tree`` maps paths inside the tree to their ELF facts; ``provided`` are the file names
    already present in ``libdir`` (they satisfy a need without vendoring). Needs are followed
    recursively through vendored libraries. Every library that cannot be found is reported at
    once.
    """
    have = set(provided)
    vendored: dict[str, tuple[Path, ElfInfo]] = {}
    needed_by: dict[str, set[str]] = {}
    missing: dict[str, set[str]] = {}
    system: set[str] = set()
    queue: list[tuple[str, ElfInfo]] = sorted(tree.items())
    while queue:
        who, info = queue.pop(0)
        for name in info.needed:
            if is_glibc(name):
                system.add(name)
                continue
            if name in have:
                if name in vendored:
                    needed_by[name].add(who)
                continue
            found = finder.find(name, requester=info)
            if found is None:
                missing.setdefault(name, set()).add(who)
                continue
            lib_info = read(found)
            have.add(name)
            vendored[name] = (found, lib_info)
            needed_by[name] = {who}
            queue.append((name, lib_info))
    if missing:
        lines = [f"{name} (needed by {', '.join(sorted(who))})" for name, who in
                 sorted(missing.items())]
        raise BuilderError(
            "cannot find shared libraries on this host:\n    " + "\n    ".join(lines),
            hint="install the packages that provide them (the runtime library packages the "
            "interpreter was built against), or remove the extension modules that need them "
            "from the installation",
        )
    libs = tuple(
        VendoredLib(name=name, source=source, dest=posixpath.join(libdir, name),
                    needed_by=tuple(sorted(needed_by[name])))
        for name, (source, _info) in sorted(vendored.items())
    )
    edits = [RpathEdit(path=path, rpath=origin_rpath(path, libdir))
             for path, info in tree.items() if _needs_rpath(info)]
    edits += [RpathEdit(path=lib.dest, rpath="$ORIGIN") for lib in libs]
    paths = [e.path for e in edits]
    if len(paths) != len(set(paths)):
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        raise BuilderError(f"vendored libraries would overwrite files of the tree: {dupes}",
                           hint="this is a bug in builder, please report it")
    return VendorPlan(
        libdir=libdir,
        vendored=libs,
        rpath_edits=tuple(sorted(edits, key=lambda e: e.path)),
        system=tuple(sorted(system)),
    )


def unresolved_needs(
    tree: Mapping[str, ElfInfo], *, libdir: str, provided: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """For a finished tree: needs that neither glibc nor ``libdir`` satisfy, or whose RPATH does
    not point at ``libdir`` (path -> names). Empty means the tree is self-contained."""
    have = set(provided)
    problems: dict[str, tuple[str, ...]] = {}
    for path, info in sorted(tree.items()):
        local = [n for n in info.needed if not is_glibc(n)]
        if not local:
            continue
        bad = [n for n in local if n not in have]
        if origin_rpath(path, libdir) not in info.search_path:
            bad = local
        if bad:
            problems[path] = tuple(bad)
    return problems


def apply_vendoring(plan: VendorPlan, root: Path, *, patchelf: Patchelf) -> None:
    """Copy the vendored libraries under ``root`` and set every planned RPATH (DT_RPATH, so it
    also wins over an ``LD_LIBRARY_PATH`` the image sets)."""
    for lib in plan.vendored:
        dest = root / lib.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(lib.source, dest)
        except OSError as exc:
            raise BuilderError(f"cannot copy library: {exc}", where=str(lib.source)) from exc
        dest.chmod(0o755)
    for edit in plan.rpath_edits:
        patchelf.force_rpath(root / edit.path, edit.rpath)
