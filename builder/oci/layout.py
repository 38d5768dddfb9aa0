"""``builder export --oci DIR``: an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``).

A layout may hold several images (bundles of several targets or versions), one per tag; exporting
a tag again replaces its entry. Readers: ``skopeo copy oci:DIR:TAG ...``, ``umoci``, ``oras``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, UsageError
from builder.fsutil import atomic_write_bytes
from builder.oci.image import Image, write_image
from builder.oci.model import ANN_REF_NAME, MEDIA_INDEX, canonical_bytes, platform_of

LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Exported:
    layout: Path
    tag: str
    image: Image


def default_tag(version: str) -> str:
    """The bundle's version as a tag (characters a tag cannot hold become ``_``)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", version)[:128]
    return tag if _TAG.fullmatch(tag) else f"v{tag}"[:128]


def _read_index(layout: Path) -> list[dict[str, Any]]:
    marker, index = layout / LAYOUT_FILE, layout / "index.json"
    if not layout.exists() or (layout.is_dir() and not any(layout.iterdir())):
        return []
    if not layout.is_dir() or not marker.is_file():
        raise BuilderError("exists and is not an OCI image layout", where=str(layout),
                           hint="name a new or empty directory, or an existing layout")
    try:
        data = json.loads(index.read_bytes())
        manifests = data["manifests"]
        if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
            raise TypeError("manifests is not a list of objects")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuilderError(f"cannot read the layout's index.json: {exc}",
                           where=str(index)) from exc
    return manifests


def export_layout(bundle: Path, layout: Path, *, tag: str | None = None) -> Exported:
    """Write ``bundle`` into the image layout ``layout`` under ``tag`` (default: its version)."""
    if tag is not None and not _TAG.fullmatch(tag):
        raise UsageError(f"bad tag {tag!r}: up to 128 letters, digits, '_', '.', '-' (not "
                         "first)")
    manifests = _read_index(layout)
    image = write_image(bundle, layout / "blobs")
    name = tag or default_tag(image.info.version)
    entry = {**image.manifest.to_dict(), "annotations": {ANN_REF_NAME: name},
             "platform": platform_of(image.info)}
    kept = [m for m in manifests if (m.get("annotations") or {}).get(ANN_REF_NAME) != name]
    kept.append(entry)
    kept.sort(key=lambda m: ((m.get("annotations") or {}).get(ANN_REF_NAME, ""),
                             str(m.get("digest"))))
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": kept}
    try:
        atomic_write_bytes(layout / LAYOUT_FILE, canonical_bytes(LAYOUT_VERSION))
        atomic_write_bytes(layout / "index.json", canonical_bytes(index))
    except OSError as exc:
        raise BuilderError(f"cannot write: {exc.strerror or exc}", where=str(layout)) from exc
    return Exported(layout=layout, tag=name, image=image)
