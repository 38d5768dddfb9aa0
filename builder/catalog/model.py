"""The catalog: which bundles a directory (or a web server) offers, for agents to resolve names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from builder.errors import BuilderError

INDEX_FORMAT_VERSION = 1
INDEX_FILENAME = "index.json"


def version_key(version: str) -> tuple[int, Version | str]:
    """Sort PEP 440 versions by meaning; anything else after them, by text."""
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogImage:
    """A bundle's mountable image (``builder build --image``), beside its archive."""

    kind: str  # "squashfs"
    filename: str  # relative to the index
    sha256: str
    size: int
    tool: str  # the mkfs tool and version that wrote it


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogEntry:
    name: str
    version: str
    target: str
    arch: str
    libc: str
    input_digest: str  # "sha256:<hex>", the digest of the bundle's inputs (its file name)
    sha256: str  # of the archive's bytes
    size: int  # of the archive
    filename: str  # relative to the index
    glibc_floor: str | None
    summary: str
    ui: dict[str, Any]
    files: int
    unpacked_bytes: int
    image: CatalogImage | None = None

    @property
    def sort_key(self) -> tuple[Any, ...]:
        return (self.name, version_key(self.version), self.target, self.filename)


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]  # sorted by sort_key

    @classmethod
    def of(cls, entries: list[CatalogEntry]) -> Catalog:
        return cls(entries=tuple(sorted(entries, key=lambda e: e.sort_key)))

    def resolve(self, name: str, version: str | None, target: str, *, where: str) -> CatalogEntry:
        """The entry for ``name`` (the highest version unless one is given) built for target."""
        named = [e for e in self.entries if e.name == name]
        if not named:
            known = sorted({e.name for e in self.entries})
            raise BuilderError(f"no bundle named {name!r} in the catalog", where=where,
                               hint=f"the catalog offers: {', '.join(known) or 'nothing'}")
        for_target = [e for e in named if e.target == target]
        if not for_target:
            targets = sorted({e.target for e in named})
            raise BuilderError(f"no {name} bundle for {target}", where=where,
                               hint=f"{name} is built for: {', '.join(targets)}")
        if version is None:
            return for_target[-1]  # sorted: the highest version last
        exact = [e for e in for_target if e.version == version]
        if not exact:
            versions = ", ".join(e.version for e in for_target)
            raise BuilderError(f"no {name} version {version} for {target}", where=where,
                               hint=f"versions available: {versions}")
        if len(exact) > 1:
            files = ", ".join(e.filename for e in exact)
            raise BuilderError(f"{name} {version} for {target} is offered more than once "
                               f"({files})", where=where,
                               hint="rebuild the index from one set of bundles")
        return exact[0]
