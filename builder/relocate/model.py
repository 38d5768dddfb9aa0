"""The relocation plan and report: pure data. Every path in a plan is relative to the app root.

Collections are sorted tuples, normalised when built, so equal plans serialise to equal bytes
(see ``codec.plan_to_dict``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class RpathTag(enum.StrEnum):
    """Which dynamic tag carries the search path; an edit keeps the tag the file had."""

    RPATH = "rpath"  # DT_RPATH: also applies to indirect dependencies
    RUNPATH = "runpath"  # DT_RUNPATH: patchelf's default


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptEdit:
    """Rewrite a python-shebang script in place as a relocatable sh/python trampoline."""

    path: PurePosixPath  # e.g. python/bin/jupyter
    old_sha256: str  # the bytes the plan was made from; apply refuses if they changed
    shebang: str  # the original first line(s) naming the interpreter, for the report
    interpreter: PurePosixPath  # the bundle interpreter, e.g. python/bin/python3.11
    flags: tuple[str, ...]  # interpreter options kept from the shebang, e.g. ("-s",)
    body: bytes  # the python source after the shebang


@dataclass(frozen=True, slots=True, kw_only=True)
class Trampoline:
    """A new entry point in ``bin/`` running the same body as the script it exposes."""

    name: str
    path: PurePosixPath  # bin/<name>
    source: PurePosixPath  # python/bin/<name>
    interpreter: PurePosixPath
    flags: tuple[str, ...]
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RpathEdit:
    """Replace the search path of one ELF file (an empty ``new`` removes the tag)."""

    path: PurePosixPath
    tag: RpathTag
    old: tuple[str, ...]  # entries in file order
    new: tuple[str, ...]  # entries in file order, every one ``$ORIGIN``-relative
    removed: tuple[str, ...]  # entries dropped because they lead outside the tree


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordEdit:
    """Rewrite one ``*.dist-info/RECORD`` after every other edit.

    Row paths are as written in the RECORD (relative to the directory holding the dist-info).
    Hashes of ``rehash`` rows are computed by the applier from the files as they end up, so
    binaries patched by patchelf and recompiled ``.pyc`` files get their real digests.
    """

    path: PurePosixPath
    old_sha256: str
    drop: tuple[str, ...]  # rows of removed files
    rehash: tuple[str, ...]  # rows of files the plan rewrites


@dataclass(frozen=True, slots=True, kw_only=True)
class PycStep:
    """Compile every ``.py`` under ``dirs`` (unchecked-hash, one embedded root for all apps)."""

    python_minor: str  # "3.11"
    dirs: tuple[PurePosixPath, ...]  # e.g. (python/lib/python3.11,)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelocationPlan:
    app_root: Path  # the staged app/ directory
    staging_root: Path
    final_root: PurePosixPath  # where app/ will be mounted, e.g. /opt/apps/jupyter
    interpreter: PurePosixPath  # python/bin/python3.X
    scripts: tuple[ScriptEdit, ...]  # sorted by path
    trampolines: tuple[Trampoline, ...]  # sorted by path
    rpaths: tuple[RpathEdit, ...]  # sorted by path
    removals: tuple[PurePosixPath, ...]  # sorted
    records: tuple[RecordEdit, ...]  # sorted by path
    pyc: PycStep | None
    needles: tuple[str, ...]  # strings that must not remain anywhere after apply, sorted
    warnings: tuple[str, ...]  # sorted

    def edited_paths(self) -> tuple[PurePosixPath, ...]:
        """Every path some edit writes, removes or creates, with repeats (for conflict checks)."""
        return (
            *(s.path for s in self.scripts),
            *(t.path for t in self.trampolines),
            *(r.path for r in self.rpaths),
            *self.removals,
            *(r.path for r in self.records),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PycResult:
    compiled: int
    failed: tuple[str, ...]  # app-relative paths of sources that did not compile, sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanHit:
    path: PurePosixPath  # relative to the scanned root
    needle: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RelocationReport:
    scripts: int  # python/bin scripts rewritten as trampolines
    trampolines: int  # new entry points in bin/
    elfs: int  # ELF files whose search path was rewritten
    pycs: int  # sources compiled
    removed: int  # files removed (direct_url.json, REQUESTED)
    records: int  # RECORD files rewritten
    warnings: tuple[str, ...]  # sorted
