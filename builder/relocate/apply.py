"""Carry out a relocation plan: the only module here that writes to the staged tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Protocol

from builder.errors import BuilderError
from builder.fsutil import atomic_write_bytes, atomic_write_text, sha256_file
from builder.relocate.model import (
    PycResult,
    RelocationPlan,
    RelocationReport,
    RpathEdit,
    RpathTag,
    ScriptEdit,
    Trampoline,
)
from builder.relocate.pyc import PycCompiler, select_pyc_compiler
from builder.relocate.record import parse_record, record_hash_file, render_record, rewrite_rows
from builder.relocate.scripts import render_trampoline


class RpathWriter(Protocol):
    """Port: the part of ``builder.elf.Patchelf`` the applier uses."""

    def set_rpath(self, path: Path, rpath: str) -> None: ...

    def force_rpath(self, path: Path, rpath: str) -> None: ...


def _stale(plan: RelocationPlan) -> list[str]:
    """Differences between the tree and what the plan was made from; checked before any write."""
    root = plan.app_root
    problems: list[str] = []
    for path, digest in [
        *((s.path, s.old_sha256) for s in plan.scripts),
        *((r.path, r.old_sha256) for r in plan.records),
    ]:
        full = root / path
        if not full.is_file() or full.is_symlink() or sha256_file(full) != digest:
            problems.append(f"{path}: changed since the plan was made")
    problems.extend(
        f"{t.path}: already exists" for t in plan.trampolines if os.path.lexists(root / t.path)
    )
    problems.extend(
        f"{p}: missing"
        for p in (*plan.removals, *(r.path for r in plan.rpaths))
        if not os.path.lexists(root / p)
    )
    return problems


def _patch(writer: RpathWriter, path: Path, edit: RpathEdit) -> None:
    mode = path.stat().st_mode
    if not mode & stat.S_IWUSR:
        path.chmod(mode | stat.S_IWUSR)
    try:
        joined = ":".join(edit.new)
        if edit.tag is RpathTag.RPATH and joined:
            writer.force_rpath(path, joined)
        else:
            writer.set_rpath(path, joined)  # an empty path removes both tags
    finally:
        if not mode & stat.S_IWUSR:
            path.chmod(stat.S_IMODE(mode))


def _digest(root: Path, target: PurePosixPath) -> tuple[str, int] | None:
    full = root / target
    if full.is_symlink() or not full.is_file():
        return None
    return record_hash_file(str(full))


def _compile(plan: RelocationPlan, compiler: PycCompiler | None) -> PycResult:
    if plan.pyc is None:
        return PycResult(compiled=0, failed=())
    chosen = compiler or select_pyc_compiler(
        plan.app_root, plan.interpreter, minor=plan.pyc.python_minor
    )
    dirs = tuple(plan.app_root / d for d in plan.pyc.dirs if (plan.app_root / d).is_dir())
    if not dirs:
        return PycResult(compiled=0, failed=())
    return chosen.compile(app_root=plan.app_root, dirs=dirs)


def apply_relocation(
    plan: RelocationPlan, *, patchelf: RpathWriter, compiler: PycCompiler | None
) -> RelocationReport:
    """Apply every edit of ``plan`` in a fixed order; RECORD files are rewritten last.

    ``compiler=None`` compiles with the bundle's own interpreter when it runs on this host
    (``select_pyc_compiler``); pass one explicitly to use a host Python instead.
    """
    root = plan.app_root
    problems = _stale(plan)
    if problems:
        raise BuilderError(
            "the staged tree does not match the relocation plan:\n  " + "\n  ".join(problems),
            where=str(root),
            hint="plan and apply the relocation again on an unchanged tree",
        )
    for path in plan.removals:
        (root / path).unlink()
    for trampoline in plan.trampolines:
        (root / trampoline.path.parent).mkdir(mode=0o755, parents=True, exist_ok=True)
    items: tuple[ScriptEdit | Trampoline, ...] = (*plan.scripts, *plan.trampolines)
    for item in items:
        text = render_trampoline(
            script=item.path, interpreter=item.interpreter, flags=item.flags, body=item.body
        )
        atomic_write_bytes(root / item.path, text, mode=0o755)
    for edit in plan.rpaths:
        _patch(patchelf, root / edit.path, edit)
    compiled = _compile(plan, compiler)
    for record in plan.records:
        full = root / record.path
        rows = parse_record(full.read_text("utf-8"), where=str(full))
        new_rows = rewrite_rows(
            record.path,
            rows,
            drop=set(record.drop),
            rehash=set(record.rehash),
            digest=lambda target: _digest(root, target),
        )
        atomic_write_text(full, render_record(new_rows), mode=stat.S_IMODE(full.stat().st_mode))
    warnings = {
        *plan.warnings,
        *(f"{path}: does not compile, left without .pyc" for path in compiled.failed),
    }
    return RelocationReport(
        scripts=len(plan.scripts),
        trampolines=len(plan.trampolines),
        elfs=len(plan.rpaths),
        pycs=compiled.compiled,
        removed=len(plan.removals),
        records=len(plan.records),
        warnings=tuple(sorted(warnings)),
    )
