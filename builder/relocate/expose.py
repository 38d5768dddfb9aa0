"""Which console scripts get an entry point in ``bin/``."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from builder.errors import BuilderError
from builder.relocate.model import ScriptEdit, Trampoline
from builder.relocate.record import parse_record, row_target
from builder.relocate.scripts import is_interpreter_script

PYTHON_BIN = PurePosixPath("python/bin")
APP_BIN = PurePosixPath("bin")


def _canonical(dist_info: PurePosixPath) -> str:
    return re.sub(r"[-_.]+", "-", dist_info.name.split("-", 1)[0]).lower()


def owners(app_root: Path, dist_infos: tuple[PurePosixPath, ...]) -> dict[PurePosixPath, str]:
    """Which distribution's RECORD lists each file (for telling pip's scripts from others)."""
    found: dict[PurePosixPath, str] = {}
    for info in dist_infos:
        record = info / "RECORD"
        if not (app_root / record).is_file():
            continue
        text = (app_root / record).read_text("utf-8")
        for path, _h, _s in parse_record(text, where=str(app_root / record)):
            target = row_target(record, path)
            if target is not None:
                found.setdefault(target, _canonical(info))
    return found


def exposed(
    app_root: Path,
    scripts: tuple[ScriptEdit, ...],
    expose: tuple[str, ...] | None,
    owners: dict[PurePosixPath, str],
) -> tuple[Trampoline, ...]:
    """Trampolines in ``bin/`` for ``expose``, or by default for every console script except
    the interpreter's own (``INTERPRETER_SCRIPTS``); a name matching those patterns is still
    exposed when a distribution other than pip lists the script in its RECORD (pip-compile).
    """
    by_name = {s.path.name: s for s in scripts}
    if expose is None:
        names = sorted(
            name
            for name, s in by_name.items()
            if not (is_interpreter_script(name) and owners.get(s.path, "pip") == "pip")
        )
    else:
        names = sorted(set(expose))
        unknown = [n for n in names if n not in by_name]
        if unknown:
            listed = ", ".join(
                f"{n} (not a python script)" if os.path.lexists(app_root / PYTHON_BIN / n) else n
                for n in unknown
            )
            raise BuilderError(
                f"cannot expose {listed}: no such console script in {PYTHON_BIN}",
                where=str(app_root),
                hint="console scripts available: " + (", ".join(sorted(by_name)) or "none"),
            )
    return tuple(
        Trampoline(
            name=name,
            path=APP_BIN / name,
            source=by_name[name].path,
            interpreter=by_name[name].interpreter,
            flags=by_name[name].flags,
            body=by_name[name].body,
        )
        for name in names
    )
