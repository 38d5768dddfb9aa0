"""A verdict of ``builder agent check`` for people (text) and for scripts (``--json``)."""

from __future__ import annotations

from typing import Any

from builder.agent.compat.model import CheckResult
from builder.elf.read import format_version


def result_to_dict(result: CheckResult) -> dict[str, Any]:
    b, i = result.bundle, result.image
    return {
        "verdict": str(result.verdict), "exit_code": result.exit_code,
        "reasons": list(result.reasons), "hints": list(result.hints),
        "bundle": {"name": b.name, "version": b.version, "target": b.target, "arch": b.arch,
                   "libc": b.libc,
                   "glibc_floor": format_version(b.glibc_floor) if b.glibc_floor else None,
                   "glibc_floor_file": b.glibc_floor_file,
                   "libstdcxx": format_version(b.libstdcxx) if b.libstdcxx else None,
                   "libstdcxx_for": b.libstdcxx_for},
        "image": {"root": i.root, "arch": i.arch, "arch_from": i.arch_from, "libc": i.libc,
                  "libc_version": format_version(i.libc_version) if i.libc_version else None,
                  "libc_from": i.libc_from, "libstdcxx_checked": i.libstdcxx_checked,
                  "libstdcxx": format_version(i.libstdcxx) if i.libstdcxx else None,
                  "libstdcxx_from": i.libstdcxx_from},
    }


def render_result(result: CheckResult) -> str:
    b = result.bundle
    where = result.image.root or "the image"
    head = f"{result.verdict}: {b.name} {b.version} ({b.target}) on {where}"
    return "\n".join([head, *(f"  - {r}" for r in result.reasons),
                      *(f"  hint: {h}" for h in result.hints)])
