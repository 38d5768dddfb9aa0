"""Build the relocation plan of a staged app tree. Reads the tree; writes nothing."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from builder.elf import ElfInfo
from builder.errors import BuilderError
from builder.fsutil import sha256_bytes
from builder.relocate.elfplan import ElfReader, PyelftoolsReader, Roots, plan_elves
from builder.relocate.expose import PYTHON_BIN, exposed, owners
from builder.relocate.model import (
    PycStep,
    RecordEdit,
    RelocationPlan,
    ScriptEdit,
)
from builder.relocate.record import parse_record, rows_touched
from builder.relocate.scripts import future_import_problem, parse_python_script

PYTHON_LIB = PurePosixPath("python/lib")
REMOVED_METADATA = ("REQUESTED", "direct_url.json")
_LIB_DIR = re.compile(r"^python(3\.\d+)$")
_ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tree:
    files: frozenset[str]  # every app-relative non-directory path, symlinks included
    regular: tuple[PurePosixPath, ...]  # regular files (not symlinks), sorted


def _walk(app_root: Path) -> _Tree:
    files: set[str] = set()
    regular: list[PurePosixPath] = []
    for dirpath, dirnames, filenames in os.walk(app_root):
        base = PurePosixPath(os.path.relpath(dirpath, app_root))
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):  # noqa: PTH114, PTH118
                files.add(str(base / name))
        for name in filenames:
            relative = base / name
            files.add(str(relative))
            full = os.path.join(dirpath, name)  # noqa: PTH118
            if not os.path.islink(full) and os.path.isfile(full):  # noqa: PTH113, PTH114
                regular.append(relative)
    return _Tree(files=frozenset(files), regular=tuple(sorted(regular)))


def _python_minor(app_root: Path) -> str:
    lib = app_root / PYTHON_LIB
    found = sorted(
        m.group(1)
        for p in (lib.iterdir() if lib.is_dir() else ())
        if p.is_dir() and (m := _LIB_DIR.match(p.name))
    )
    if len(found) != 1:
        raise BuilderError(
            f"expected one python3.X directory in {PYTHON_LIB}, found {len(found)}",
            where=str(app_root),
            hint="relocate runs on a staged tree with a python-build-standalone layout",
        )
    return found[0]


def _interpreter(app_root: Path, minor: str) -> PurePosixPath:
    for name in (f"python{minor}", "python3"):
        candidate = PYTHON_BIN / name
        if os.path.lexists(app_root / candidate):
            return candidate
    raise BuilderError(
        f"no interpreter {PYTHON_BIN}/python{minor} in the staged tree", where=str(app_root)
    )


def _dist_infos(app_root: Path, minor: str) -> tuple[PurePosixPath, ...]:
    site = PYTHON_LIB / f"python{minor}" / "site-packages"
    if not (app_root / site).is_dir():
        return ()
    return tuple(
        sorted(
            site / p.name
            for p in (app_root / site).iterdir()
            if p.name.endswith(".dist-info") and p.is_dir() and not p.is_symlink()
        )
    )


def _scripts(
    app_root: Path, tree: _Tree, interpreter: PurePosixPath
) -> tuple[tuple[ScriptEdit, ...], tuple[str, ...]]:
    edits: list[ScriptEdit] = []
    warnings: list[str] = []
    for path in tree.regular:
        if path.parent != PYTHON_BIN:
            continue
        with (app_root / path).open("rb") as fh:
            head = fh.read(4)
            if head == _ELF_MAGIC:
                continue
            data = head + fh.read()
        parsed = parse_python_script(data)
        if parsed is None:
            continue
        edits.append(
            ScriptEdit(
                path=path,
                old_sha256=sha256_bytes(data),
                shebang=parsed.shebang,
                interpreter=interpreter,
                flags=parsed.flags,
                body=parsed.body,
            )
        )
        if future_import_problem(parsed.body):
            warnings.append(
                f"{path}: 'from __future__' after a docstring does not compile behind the "
                "trampoline's header"
            )
    return tuple(edits), tuple(warnings)


def _records(
    app_root: Path,
    dist_infos: tuple[PurePosixPath, ...],
    *,
    removed: frozenset[PurePosixPath],
    rewritten: frozenset[PurePosixPath],
) -> tuple[RecordEdit, ...]:
    edits: list[RecordEdit] = []
    for info in dist_infos:
        record = info / "RECORD"
        if not (app_root / record).is_file():
            continue
        data = (app_root / record).read_bytes()
        rows = parse_record(data.decode("utf-8"), where=str(app_root / record))
        drop, rehash = rows_touched(record, rows, removed=removed, rewritten=rewritten)
        if drop or rehash:
            edits.append(
                RecordEdit(path=record, old_sha256=sha256_bytes(data), drop=drop, rehash=rehash)
            )
    return tuple(edits)


def _elf_infos(
    app_root: Path, tree: _Tree, reader: ElfReader
) -> tuple[dict[PurePosixPath, ElfInfo], tuple[str, ...]]:
    """ELF facts of every regular file that is one; unreadable ones are warnings (test data)."""
    infos: dict[PurePosixPath, ElfInfo] = {}
    warnings: list[str] = []
    for path in tree.regular:
        try:
            info = reader.read(app_root / path)
        except BuilderError as exc:
            warnings.append(f"{path}: unreadable ELF file left unchanged ({exc.what})")
            continue
        if info is not None:
            infos[path] = info
    return infos, tuple(warnings)


def _roots(*paths: PurePosixPath) -> tuple[PurePosixPath, ...]:
    return tuple(sorted(set(paths)))


def check_conflicts(plan: RelocationPlan) -> None:
    """Refuse a plan where one file gets two edits, or a new file would replace an existing one."""
    problems = [
        f"{path}: {count} edits"
        for path, count in sorted(Counter(plan.edited_paths()).items())
        if count > 1
    ]
    problems.extend(
        f"{t.path}: trampoline for {t.name!r} would replace an existing file"
        for t in plan.trampolines
        if os.path.lexists(plan.app_root / t.path)
    )
    if problems:
        raise BuilderError(
            "conflicting relocation edits:\n  " + "\n  ".join(problems),
            where=str(plan.app_root),
            hint="rename or remove the clashing files, or choose other names to expose",
        )


def plan_relocation(
    app_root: Path,
    *,
    final_root: PurePosixPath,
    staging_root: Path,
    expose: tuple[str, ...] | None,
    elf_reader: ElfReader | None = None,
) -> RelocationPlan:
    """Every edit needed so the staged ``app_root`` runs from ``final_root`` (or anywhere)."""
    if not final_root.is_absolute():
        raise BuilderError(f"final root {final_root} must be an absolute path")
    if not app_root.is_dir():
        raise BuilderError("staged app tree not found", where=str(app_root))
    # absolute and normalised but symlinks kept: the path as the install stage wrote it
    app_root = Path(os.path.abspath(app_root))  # noqa: PTH100
    staging = Path(os.path.abspath(staging_root))  # noqa: PTH100
    minor = _python_minor(app_root)
    interpreter = _interpreter(app_root, minor)
    tree = _walk(app_root)
    scripts, script_warnings = _scripts(app_root, tree, interpreter)
    dist_infos = _dist_infos(app_root, minor)
    trampolines = exposed(app_root, scripts, expose, owners(app_root, dist_infos))
    roots = Roots(
        inside=_roots(
            PurePosixPath(app_root), PurePosixPath(os.path.realpath(app_root)), final_root
        )
    )
    infos, unreadable = _elf_infos(app_root, tree, elf_reader or PyelftoolsReader())
    rpaths, elf_warnings = plan_elves(
        infos,
        files=tree.files,
        roots=roots,
        interpreter=interpreter,
    )
    removals = tuple(
        sorted(
            info / name
            for info in dist_infos
            for name in REMOVED_METADATA
            if str(info / name) in tree.files
        )
    )
    pyc_dir = PYTHON_LIB / f"python{minor}"
    pyc = PycStep(python_minor=minor, dirs=(pyc_dir,))
    records = _records(
        app_root,
        dist_infos,
        removed=frozenset(removals),
        rewritten=frozenset([*(s.path for s in scripts), *(r.path for r in rpaths)]),
    )
    plan = RelocationPlan(
        app_root=app_root,
        staging_root=staging,
        final_root=final_root,
        interpreter=interpreter,
        scripts=scripts,
        trampolines=trampolines,
        rpaths=rpaths,
        removals=removals,
        records=records,
        pyc=pyc,
        needles=tuple(sorted({str(staging), os.path.realpath(staging)})),
        warnings=tuple(sorted({*script_warnings, *unreadable, *elf_warnings})),
    )
    check_conflicts(plan)
    return plan
