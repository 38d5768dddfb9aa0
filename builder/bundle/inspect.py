"""``builder inspect``: the manifest of a bundle, for people and for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.bundle.archive import read_member
from builder.errors import BuilderError


def inspect_bundle(path: Path) -> dict[str, Any]:
    """Read ``manifest.json`` from a bundle (``.tar.zst``) or its sidecar ``.json``."""
    if not path.exists():
        raise BuilderError("no such bundle", where=str(path))
    if path.suffix == ".json":
        raw: bytes | None = path.read_bytes()
    else:
        raw = read_member(path, "manifest.json")
    if raw is None:
        raise BuilderError("the archive has no manifest.json", where=str(path),
                           hint="is this a builder bundle?")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BuilderError(f"manifest.json is not valid JSON: {exc}", where=str(path)) from exc
    if not isinstance(data, dict):
        raise BuilderError("manifest.json is not a JSON object", where=str(path))
    return data


def render_manifest(m: dict[str, Any]) -> str:
    interp = m.get("interpreter") or {}
    sizes = m.get("sizes") or {}
    lines = [
        f"{m.get('name')} {m.get('version')}  ({m.get('summary', '')})",
        f"  target:       {m.get('target')} (libc {m.get('libc')})",
        f"  mount at:     {m.get('final_root')}",
        f"  glibc floor:  {m.get('glibc_floor')} (from {m.get('glibc_floor_file')}; recipe asks "
        f"{m.get('recipe_glibc_floor')})",
        f"  interpreter:  CPython {interp.get('python_version')} ({interp.get('origin')}, "
        f"sha256 {str(interp.get('sha256'))[:16]}...)",
        f"  input digest: {m.get('input_digest')}",
        f"  files:        {sizes.get('files')} ({(sizes.get('unpacked_bytes') or 0) / 1e6:.1f} MB "
        "unpacked)",
    ]
    launch = m.get("launch")
    if launch:
        pythons = sorted(launch.get("wheelhouse") or {}, key=_version_key)
        wheelhouse = ", ".join(pythons) or "none"
        kind = (m.get("service") or {}).get("kind") or "command"
        if launch.get("flavor"):
            lines.append(f"  launch:       {launch.get('launcher')} ({launch['flavor']}; image "
                         f"Python: {launch.get('image_python')}, wheelhouse for {wheelhouse})")
        else:
            lines.append(f"  launch:       {launch.get('launcher')} ({kind})")
        lines.append(f"  platforms:    {launch.get('service_def')} (Backend.AI "
                     f"{(m.get('labels') or {}).get('ai.backend.service-ports')}), "
                     f"{launch.get('s6_service')} (s6-overlay)")
    node = m.get("node")
    if node:
        trimmed = sum((node.get("trimmed") or {}).values())
        lines.append(f"  node app:     {node.get('package')} on Node.js {node.get('runtime')} "
                     f"(native modules: glibc {node.get('native_glibc_floor')}, "
                     f"{len(node.get('exempt') or [])} exempt; the image needs libstdc++ with "
                     f"{node.get('libstdcxx')}; trimming saved {trimmed / 1e6:.1f} MB)")
    if "archive" in m:
        archive = m["archive"]
        lines.append(f"  archive:      {archive.get('filename')} ({archive.get('size')} bytes, "
                     f"sha256 {archive.get('sha256')})")
    packages = m.get("packages") or []
    lines.append(f"  packages ({len(packages)}):")
    lines.extend(f"    {p.get('name')}=={p.get('version')}  [{p.get('license')}]"
                 for p in packages)
    return "\n".join(lines)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))
