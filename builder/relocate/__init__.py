"""builder.relocate: make a staged app tree run from its final location, or from anywhere.

Plan, then apply: ``plan_relocation`` reads the staged tree and returns an immutable, checked
plan (python-shebang scripts become sh/python trampolines, exposed entry points appear in
``bin/``, RPATHs become ``$ORIGIN``-relative, install-time metadata goes, RECORDs follow, and the
sources are compiled to unchecked-hash ``.pyc``); ``apply_relocation`` carries it out;
``scan_for_paths`` proves no staging path is left. ``relocate`` does all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from builder.errors import BuilderError
from builder.relocate.apply import RpathWriter, apply_relocation
from builder.relocate.codec import plan_to_dict
from builder.relocate.elfplan import SYSTEM_LIBRARIES, ElfReader, PyelftoolsReader
from builder.relocate.model import (
    PycResult,
    PycStep,
    RecordEdit,
    RelocationPlan,
    RelocationReport,
    RpathEdit,
    RpathTag,
    ScanHit,
    ScriptEdit,
    Trampoline,
)
from builder.relocate.plan import check_conflicts, plan_relocation
from builder.relocate.pyc import CompileallCompiler, PycCompiler, select_pyc_compiler
from builder.relocate.scan import scan_for_paths
from builder.relocate.scripts import render_trampoline

MAX_LISTED = 20


def leftover_error(app_root: Path, hits: tuple[ScanHit, ...],
                   origins: Mapping[str, str] | None = None) -> BuilderError:
    """``origins`` says who wrote a file (e.g. "written by build step 2 (jupyter ...)")."""
    files = sorted({str(h.path) for h in hits})
    needles = sorted({h.needle for h in hits})
    origins = origins or {}
    listed = "\n  ".join(
        f"{f} ({origins[f]})" if f in origins else f for f in files[:MAX_LISTED])
    more = f"\n  ... and {len(files) - MAX_LISTED} more" if len(files) > MAX_LISTED else ""
    hint = ("these files would break once the bundle is moved; make the package that installs "
            "them relocatable, or report which edit relocation is missing")
    if any(f in origins for f in files):
        hint = ("a build step wrote the path the app has during the build: make it write paths "
                "relative to the app, or compute them at run time; otherwise " + hint)
    return BuilderError(
        f"{len(files)} {'files still contain' if len(files) != 1 else 'file still contains'} "
        "the staging path "
        f"({', '.join(needles)}) after relocation:\n  {listed}{more}",
        where=str(app_root),
        hint=hint,
    )


def relocate(
    app_root: Path,
    *,
    final_root: PurePosixPath,
    staging_root: Path,
    expose: tuple[str, ...] | None,
    patchelf: RpathWriter,
    compiler: PycCompiler | None,
    origins: Mapping[str, str] | None = None,
) -> RelocationReport:
    """Plan, apply, then scan; raise BuilderError listing files still holding the staging path
    (with who wrote them, from ``origins``: relative path -> note)."""
    plan = plan_relocation(
        app_root, final_root=final_root, staging_root=staging_root, expose=expose
    )
    report = apply_relocation(plan, patchelf=patchelf, compiler=compiler)
    hits = scan_for_paths(plan.app_root, plan.needles)
    if hits:
        raise leftover_error(plan.app_root, hits, origins)
    return report


__all__ = [
    "SYSTEM_LIBRARIES",
    "CompileallCompiler",
    "ElfReader",
    "PycCompiler",
    "PycResult",
    "PycStep",
    "PyelftoolsReader",
    "RecordEdit",
    "RelocationPlan",
    "RelocationReport",
    "RpathEdit",
    "RpathTag",
    "RpathWriter",
    "ScanHit",
    "ScriptEdit",
    "Trampoline",
    "apply_relocation",
    "check_conflicts",
    "leftover_error",
    "plan_relocation",
    "plan_to_dict",
    "relocate",
    "render_trampoline",
    "scan_for_paths",
    "select_pyc_compiler",
]
