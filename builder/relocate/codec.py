"""A relocation plan as plain data: stable, sorted, free of the staging path (golden tests)."""

from __future__ import annotations

from typing import Any

from builder.fsutil import sha256_bytes
from builder.relocate.model import RelocationPlan
from builder.relocate.scripts import render_trampoline

PLAN_FORMAT_VERSION = 1


def plan_to_dict(plan: RelocationPlan) -> dict[str, Any]:
    """JSON-ready data; rendered script texts appear as their sha256 and size.

    Staging paths in shebangs, search paths and warnings read ``<staging>``, so plans of equal
    trees staged in different directories give equal data.
    """

    def redact(text: str) -> str:
        for needle in sorted(plan.needles, key=len, reverse=True):
            text = text.replace(needle, "<staging>")
        return text

    def script(path: Any, interpreter: Any, flags: tuple[str, ...], body: bytes) -> dict[str, Any]:
        text = render_trampoline(script=path, interpreter=interpreter, flags=flags, body=body)
        return {"sha256": sha256_bytes(text), "size": len(text)}

    return {
        "format_version": PLAN_FORMAT_VERSION,
        "final_root": str(plan.final_root),
        "interpreter": str(plan.interpreter),
        "scripts": [
            {
                "path": str(s.path),
                "shebang": redact(s.shebang),
                "flags": list(s.flags),
                **script(s.path, s.interpreter, s.flags, s.body),
            }
            for s in plan.scripts
        ],
        "trampolines": [
            {
                "name": t.name,
                "path": str(t.path),
                "source": str(t.source),
                **script(t.path, t.interpreter, t.flags, t.body),
            }
            for t in plan.trampolines
        ],
        "rpaths": [
            {
                "path": str(r.path),
                "tag": r.tag.value,
                "old": [redact(e) for e in r.old],
                "new": list(r.new),
                "removed": [redact(e) for e in r.removed],
            }
            for r in plan.rpaths
        ],
        "removals": [str(p) for p in plan.removals],
        "records": [
            {"path": str(r.path), "drop": list(r.drop), "rehash": list(r.rehash)}
            for r in plan.records
        ],
        "pyc": None
        if plan.pyc is None
        else {"python_minor": plan.pyc.python_minor, "dirs": [str(d) for d in plan.pyc.dirs]},
        "warnings": [redact(w) for w in plan.warnings],
    }
