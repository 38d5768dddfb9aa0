"""``builder index DIR``: list every bundle of a directory in ``DIR/index.json``.

Each ``*.tar.zst`` is hashed; its manifest comes from the sidecar ``.json`` beside it (which must
agree with the archive's bytes) or, without a sidecar, from the archive itself. The index has no
time stamps and a fixed order, so the same bundles give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.bundle.inspect import inspect_bundle
from builder.catalog.codec import catalog_from_dict, catalog_to_dict
from builder.catalog.model import INDEX_FILENAME, Catalog, CatalogEntry, CatalogImage
from builder.errors import BuilderError
from builder.fsutil import atomic_write_text, canonical_json, sha256_file

SUFFIX = ".tar.zst"


def _sidecar_of(archive: Path) -> Path:
    return archive.with_name(archive.name[: -len(SUFFIX)] + ".json")


def _manifest_for(archive: Path, sha256: str, size: int) -> dict[str, Any]:
    sidecar = _sidecar_of(archive)
    if not sidecar.is_file():
        return inspect_bundle(archive)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        recorded = data["archive"]
        ok = recorded["sha256"] == sha256 and recorded["size"] == size
    except (ValueError, KeyError, TypeError) as exc:
        raise BuilderError(f"unreadable sidecar: {exc}", where=str(sidecar),
                           hint="rebuild the bundle, or delete the sidecar") from exc
    if not ok:
        raise BuilderError("the sidecar does not describe this archive (sha256 or size differ)",
                           where=str(sidecar),
                           hint="the archive was replaced or damaged; rebuild it")
    return {k: v for k, v in data.items() if k != "archive"}


def _image_for(archive: Path, listed: Any) -> CatalogImage | None:
    """The image the sidecar lists, checked against the file beside the archive."""
    if listed is None:
        return None
    sidecar = _sidecar_of(archive)
    try:
        image = CatalogImage(kind=listed["kind"], filename=listed["filename"],
                             sha256=listed["sha256"], size=listed["size"], tool=listed["tool"])
    except (KeyError, TypeError) as exc:
        raise BuilderError(f"unreadable image entry in the sidecar: {exc}", where=str(sidecar),
                           hint="rebuild the bundle with --image") from exc
    path = archive.with_name(str(image.filename))
    if not path.is_file():
        raise BuilderError(f"the sidecar lists the image {image.filename}, which is not there",
                           where=str(sidecar),
                           hint="copy the image beside the archive, or rebuild with --image")
    if path.stat().st_size != image.size or sha256_file(path) != image.sha256:
        raise BuilderError("the sidecar does not describe this image (sha256 or size differ)",
                           where=str(path), hint="the image was replaced or damaged; rebuild it")
    return image


def entry_for(archive: Path) -> CatalogEntry:
    sha256 = sha256_file(archive)
    size = archive.stat().st_size
    m = _manifest_for(archive, sha256, size)
    image = _image_for(archive, m.get("image"))
    try:
        return CatalogEntry(
            name=m["name"], version=m["version"], target=m["target"], arch=m["arch"],
            libc=m["libc"], input_digest=m["input_digest"], sha256=sha256, size=size,
            filename=archive.name, glibc_floor=m["glibc_floor"], summary=m["summary"],
            ui=m["ui"], files=m["sizes"]["files"], unpacked_bytes=m["sizes"]["unpacked_bytes"],
            image=image,
        )
    except (KeyError, TypeError) as exc:
        raise BuilderError(f"the manifest lacks {exc}", where=str(archive),
                           hint="is this a builder bundle?") from exc


def scan_directory(directory: Path, *, log: Callable[[str], None] = lambda _m: None) -> Catalog:
    if not directory.is_dir():
        raise BuilderError("not a directory", where=str(directory))
    entries = []
    for archive in sorted(directory.glob(f"*{SUFFIX}")):
        if archive.is_file():
            log(f"indexing {archive.name}")
            entries.append(entry_for(archive))
    catalog = Catalog.of(entries)
    # what we write must be what agents accept
    return catalog_from_dict(catalog_to_dict(catalog), where=str(directory / INDEX_FILENAME))


def write_index(directory: Path, *, log: Callable[[str], None] = lambda _m: None
                ) -> tuple[Path, Catalog]:
    """Write ``directory/index.json`` (atomically); returns its path and the catalog."""
    catalog = scan_directory(directory, log=log)
    path = directory / INDEX_FILENAME
    atomic_write_text(path, canonical_json(catalog_to_dict(catalog)))
    return path, catalog
