"""Remove what a Node.js app never uses at run time, and say how many bytes each kind was.

Plan, then apply: :func:`plan_trim` walks the tree and classifies files (pure rules in
:func:`classify`), :func:`apply_trim` deletes and strips. Categories:

- ``headers``: C/C++ headers (``*.h``, ...), and the runtime's ``include/`` (65 MB for Node 24);
- ``static-libs``: ``*.a``/``*.o`` left by native builds;
- ``build-leftovers``: under a native package's ``build/``, all but the files directly in
  ``build/Release`` (``obj.target`` holds a second copy of every module, ``.deps`` and the
  Makefiles are gyp's);
- ``native-sources``: C/C++ sources and ``deps/`` source archives of packages we built;
- ``other-platforms``: ELF files for another arch, libc or OS (from the audit), and Windows or
  macOS binaries (``*.dll``, ``*.exe``, ``*.pdb``, ``*.dylib``);
- ``debug-symbols``: ``.debug_*`` sections, stripped with ``--strip-debug`` (the dynamic symbols
  Node resolves are kept);
- ``sourcemaps`` (opt-in): ``*.map``, which only a debugger reads;
- ``docs`` (runtime only): the runtime's ``share/`` (man pages).
Symlinks are never followed or removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from builder.node.audit import TreeAudit, Verdict
from builder.tools.run import Runner, run_checked


class Category(StrEnum):
    HEADERS = "headers"
    STATIC_LIBS = "static-libs"
    BUILD_LEFTOVERS = "build-leftovers"
    NATIVE_SOURCES = "native-sources"
    OTHER_PLATFORMS = "other-platforms"
    DEBUG_SYMBOLS = "debug-symbols"
    SOURCEMAPS = "sourcemaps"
    DOCS = "docs"


_HEADER_EXT = (".h", ".hh", ".hpp", ".hxx", ".inl")
_STATIC_EXT = (".a", ".o", ".lib", ".obj")
_SOURCE_EXT = (".c", ".cc", ".cpp", ".cxx", ".S", ".asm")
_SOURCE_ARCHIVE_EXT = (".tar.gz", ".tgz", ".tar.xz", ".zip")
_FOREIGN_EXT = (".dll", ".exe", ".pdb", ".dylib")
_KEEP_BUILD_DIRS = ("build/Release/", "build/Debug/")


@dataclass(frozen=True, slots=True, kw_only=True)
class TrimOptions:
    sourcemaps: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Removal:
    path: str  # POSIX, relative to the plan's root
    category: Category
    size: int  # bytes (a directory: every file in it)
    files: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TrimPlan:
    root: Path
    removals: tuple[Removal, ...]  # sorted by path; none inside another
    strips: tuple[str, ...]  # ELF files to strip of debug sections, sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryTotal:
    files: int
    bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TrimReport:
    totals: tuple[tuple[Category, CategoryTotal], ...]  # sorted by category
    unstripped: tuple[str, ...] = ()  # files with debug sections left (no strip tool)

    @property
    def saved(self) -> int:
        return sum(total.bytes for _, total in self.totals)

    def merged(self, other: TrimReport) -> TrimReport:
        sums: dict[Category, CategoryTotal] = dict(self.totals)
        for category, total in other.totals:
            old = sums.get(category, CategoryTotal(files=0, bytes=0))
            sums[category] = CategoryTotal(files=old.files + total.files,
                                           bytes=old.bytes + total.bytes)
        return TrimReport(totals=tuple(sorted(sums.items())),
                          unstripped=tuple(sorted({*self.unstripped, *other.unstripped})))

    def render(self) -> str:
        lines = [f"{category:<16} {total.files:>6} files {total.bytes / 1e6:>9.1f} MB"
                 for category, total in self.totals]
        files = sum(total.files for _, total in self.totals)
        lines.append(f"{'total':<16} {files:>6} files {self.saved / 1e6:>9.1f} MB")
        if self.unstripped:
            lines.append(f"not stripped (no strip tool): {len(self.unstripped)} files")
        return "\n".join(lines)


class Stripper(Protocol):
    def __call__(self, path: Path) -> None: ...


def classify(rel: str, *, native_packages: Iterable[str], foreign: frozenset[str],
             options: TrimOptions) -> Category | None:
    """The category of the file at ``rel`` (POSIX, relative to the root), None to keep it."""
    if rel in foreign:
        return Category.OTHER_PLATFORMS
    name = rel.rsplit("/", 1)[-1]
    package = max((p for p in native_packages if rel.startswith(p + "/")), key=len, default=None)
    if package is not None:
        inner = rel[len(package) + 1:]
        if inner.startswith("build/") and not any(
                inner.startswith(d) and "/" not in inner[len(d):] for d in _KEEP_BUILD_DIRS):
            return _by_extension(name) or Category.BUILD_LEFTOVERS
        if name.endswith(_SOURCE_EXT) or (
                inner.startswith("deps/") and name.endswith(_SOURCE_ARCHIVE_EXT)):
            return Category.NATIVE_SOURCES
    category = _by_extension(name)
    if category is not None:
        return category
    if options.sourcemaps and name.endswith(".map"):
        return Category.SOURCEMAPS
    return None


def _by_extension(name: str) -> Category | None:
    if name.endswith(_HEADER_EXT):
        return Category.HEADERS
    if name.endswith(_STATIC_EXT):
        return Category.STATIC_LIBS
    if name.endswith(_FOREIGN_EXT):
        return Category.OTHER_PLATFORMS
    return None


def native_packages(root: Path) -> tuple[str, ...]:
    """Package directories (relative) with a ``binding.gyp``: the ones node-gyp built."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "binding.gyp" in filenames and "package.json" in filenames:
            found.append(Path(dirpath).relative_to(root).as_posix())
    return tuple(sorted(found))


def plan_trim(root: Path, *, audit: TreeAudit | None = None,
              options: TrimOptions = TrimOptions()) -> TrimPlan:
    """What to remove from an installed app tree (``root`` holds ``node_modules``)."""
    foreign = frozenset(f.path for f in audit.files if f.verdict is Verdict.FOREIGN) \
        if audit else frozenset()
    strips = tuple(sorted(f.path for f in audit.files
                          if f.has_debug and f.verdict is not Verdict.FOREIGN)) if audit else ()
    natives = native_packages(root)
    removals = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            rel = path.relative_to(root).as_posix()
            category = classify(rel, native_packages=natives, foreign=foreign, options=options)
            if category is not None:
                removals.append(Removal(path=rel, category=category, size=path.stat().st_size))
    return TrimPlan(root=root, removals=tuple(sorted(removals, key=lambda r: r.path)),
                    strips=tuple(s for s in strips if s not in {r.path for r in removals}))


def plan_runtime_trim(runtime_root: Path) -> TrimPlan:
    """The Node runtime's headers (``include/``) and ``share/`` (man pages, docs)."""
    removals = []
    for rel, category in (("include", Category.HEADERS), ("share", Category.DOCS)):
        path = runtime_root / rel
        if path.is_dir() and not path.is_symlink():
            size, files = _tree_size(path)
            removals.append(Removal(path=rel, category=category, size=size, files=files))
    return TrimPlan(root=runtime_root, removals=tuple(removals), strips=())


def apply_trim(plan: TrimPlan, *, stripper: Stripper | None) -> TrimReport:
    sums: dict[Category, list[int]] = {}

    def add(category: Category, size: int, files: int = 1) -> None:
        entry = sums.setdefault(category, [0, 0])
        entry[0] += files
        entry[1] += size

    for removal in plan.removals:
        path = plan.root / removal.path
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        add(removal.category, removal.size, removal.files)
        _prune_empty_parents(path.parent, stop=plan.root)
    unstripped: list[str] = []
    for rel in plan.strips:
        path = plan.root / rel
        if stripper is None:
            unstripped.append(rel)
            continue
        before = path.stat().st_size
        stripper(path)
        add(Category.DEBUG_SYMBOLS, before - path.stat().st_size)
    totals = tuple(sorted((c, CategoryTotal(files=v[0], bytes=v[1])) for c, v in sums.items()))
    return TrimReport(totals=totals, unstripped=tuple(unstripped))


def _prune_empty_parents(directory: Path, *, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def _tree_size(path: Path) -> tuple[int, int]:
    """Bytes and number of the regular files under ``path``."""
    total = count = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            file = Path(dirpath) / name
            if not file.is_symlink():
                total += file.stat().st_size
                count += 1
    return total, count


@dataclass(frozen=True, slots=True)
class CommandStripper:
    """``<tool> --strip-debug FILE`` (llvm-strip handles every arch; GNU strip only its own)."""

    tool: Path
    runner: Runner
    env: Mapping[str, str]

    def __call__(self, path: Path) -> None:
        run_checked(self.runner, [str(self.tool), "--strip-debug", str(path)], cwd=path.parent,
                    env=self.env, what=f"stripping {path.name}")


def find_strip_tool(*, cross: bool) -> Path | None:
    """``llvm-strip`` from PATH, else GNU ``strip`` when building for the host's arch.

    zig 0.17's ``objcopy --strip-debug`` fails with "unimplemented" on these modules, so the
    toolchain avoids debug info at link time (``-s``) and this only handles prebuilt files.
    """
    for name in ("llvm-strip", *(() if cross else ("strip",))):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None
