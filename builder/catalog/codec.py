"""``index.json`` <-> :class:`Catalog`; reading an index from a path or a URL."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from builder.catalog.model import (
    INDEX_FILENAME,
    INDEX_FORMAT_VERSION,
    Catalog,
    CatalogEntry,
    CatalogImage,
)
from builder.errors import BuilderError, production_assert
from builder.net import is_remote, local_path
from builder.schema import problems

MAX_INDEX_BYTES = 64 << 20


@cache
def index_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("builder.catalog").joinpath("index.schema.json").read_text(encoding="utf-8"))
    return data


def entry_to_dict(entry: CatalogEntry) -> dict[str, Any]:
    data = {
        "name": entry.name, "version": entry.version, "target": entry.target,
        "arch": entry.arch, "libc": entry.libc, "input_digest": entry.input_digest,
        "sha256": entry.sha256, "size": entry.size, "filename": entry.filename,
        "glibc_floor": entry.glibc_floor, "summary": entry.summary, "ui": entry.ui,
        "files": entry.files, "unpacked_bytes": entry.unpacked_bytes,
    }
    if entry.image is not None:  # only bundles built with --image: other indexes unchanged
        image = entry.image
        data["image"] = {"kind": image.kind, "filename": image.filename,
                         "sha256": image.sha256, "size": image.size, "tool": image.tool}
    return data


def catalog_to_dict(catalog: Catalog) -> dict[str, Any]:
    return {"format_version": INDEX_FORMAT_VERSION,
            "bundles": [entry_to_dict(e) for e in catalog.entries]}


def catalog_from_dict(data: Any, *, where: str) -> Catalog:
    """Check an index (untrusted input) against its schema; every problem reported at once."""
    found = list(problems(data, index_schema()))
    if found:
        shown = "\n  ".join(found[:20])
        more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
        raise BuilderError(f"not a valid catalog index ({len(found)} problem(s)):\n  {shown}{more}",
                           where=where, hint="rebuild it with: builder index DIR")
    entries = [CatalogEntry(**{**item, "image": CatalogImage(**item["image"])})
               if "image" in item else CatalogEntry(**item) for item in data["bundles"]]
    return Catalog.of(entries)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedCatalog:
    catalog: Catalog
    location: str  # the index.json read (a URL or a path)

    def archive_location(self, entry: CatalogEntry) -> str:
        """Where an entry's archive is: beside the index (a URL or a path)."""
        return self.file_location(entry.filename)

    def file_location(self, filename: str) -> str:
        """A file listed in the index (an archive, an image): beside it (a URL or a path)."""
        if is_remote(self.location):
            return urllib.parse.urljoin(self.location, urllib.parse.quote(filename))
        path = local_path(self.location)
        production_assert(path is not None, f"no local path for {self.location}")
        return str(Path(str(path)).parent / filename)


def index_location(source: str) -> str:
    """``source`` itself, or ``source/index.json`` when it names a directory."""
    if is_remote(source):
        return source if not source.endswith("/") else source + INDEX_FILENAME
    path = local_path(source)
    if path is not None and path.is_dir():
        return str(path / INDEX_FILENAME)
    return source


def load_catalog(source: str, *, read: Callable[[str], bytes]) -> LoadedCatalog:
    """Read and check the index at ``source`` (URL, file, or a directory holding index.json)."""
    location = index_location(source)
    raw = read(location)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BuilderError(f"the catalog index is not JSON: {exc}", where=location) from exc
    return LoadedCatalog(catalog=catalog_from_dict(data, where=location), location=location)

