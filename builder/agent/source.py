"""Where a bundle comes from, and who vouches for its sha256.

``SOURCE`` is a path, an ``http(s)://``/``file://`` URL, ``NAME[@VERSION]`` looked up in a
catalog, or ``oci://REGISTRY/REPO@sha256:DIGEST`` (an image made by ``builder push``). The sha256
comes from the catalog, from the sidecar ``.json`` beside the archive, or from ``--sha256``;
for an image it is the manifest digest pinned in the reference (or ``--sha256`` with a tag).
When several are at hand they must agree. With none of them, nothing is installed.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from builder.agent.errors import RefusedBundleError
from builder.agent.manifest_check import Expectation, canonical
from builder.catalog.codec import load_catalog
from builder.errors import BuilderError, UsageError
from builder.net import NetworkError, is_url, local_path
from builder.net import Transport as NetTransportPort
from builder.oci.reference import SCHEME as OCI_SCHEME
from builder.oci.reference import ImageRef, parse_reference

SUFFIX = ".tar.zst"
MAX_SIDECAR_BYTES = 16 << 20
_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*)(?:@(?P<version>[^@/\s]+))?$")

# the one transport port (``builder.net.Transport``), under the name install() imports
Transport: TypeAlias = NetTransportPort


@dataclass(frozen=True, slots=True, kw_only=True)
class FsImage:
    """A mountable image of the bundle (``builder build --image``), as its sidecar lists it."""

    kind: str  # "squashfs"
    location: str  # a local path or a URL, beside the archive
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedSource:
    location: str  # a local path or a URL of the archive; oci://REGISTRY/REPO@sha256:...
    expect: Expectation
    image: ImageRef | None = None  # an OCI image, pinned by its manifest digest
    fs_image: FsImage | None = None  # a mountable image the sidecar or catalog lists

    @property
    def sha256(self) -> str:
        return self.expect.sha256

    @property
    def is_local(self) -> bool:
        return self.image is None and local_path(self.location) is not None


def sidecar_location(archive: str) -> str | None:
    """``X.tar.zst`` -> ``X.json`` (for a path or a URL); None for other names."""
    if is_url(archive):
        parts = urllib.parse.urlsplit(archive)
        if not parts.path.endswith(SUFFIX):
            return None
        return urllib.parse.urlunsplit(parts._replace(path=parts.path[: -len(SUFFIX)] + ".json"))
    return archive[: -len(SUFFIX)] + ".json" if archive.endswith(SUFFIX) else None


def _looks_like_path(source: str) -> bool:
    return "/" in source or source.endswith(SUFFIX) or Path(source).is_file()


def resolve_source(source: str, *, index: str | None, sha256: str | None, target: str,
                   transport: Transport) -> ResolvedSource:
    if sha256 is not None and not re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", sha256):
        raise UsageError(f"--sha256 must be 64 hex digits, not {sha256!r}")
    given = sha256.lower().removeprefix("sha256:") if sha256 else None
    if source.startswith(OCI_SCHEME):
        return _from_image(source, given)
    if is_url(source) or _looks_like_path(source):
        if local_path(source) is not None and not Path(str(local_path(source))).is_file():
            raise BuilderError("no such bundle file", where=source)
        return _from_archive(source, given, transport)
    match = _REF.match(source)
    if match is None:
        raise UsageError(f"not a path, URL or NAME[@VERSION]: {source!r}")
    if index is None:
        raise UsageError(f"{source!r} is a bundle name: say which catalog with --index URL|PATH")
    return _from_catalog(match["name"], match["version"], index=index, given=given,
                         target=target, transport=transport)


def _from_image(source: str, given: str | None) -> ResolvedSource:
    """``oci://REGISTRY/REPO@sha256:HEX`` (or ``:TAG`` with ``--sha256``): the manifest digest
    is the hash checked before anything else of the image is read."""
    ref = parse_reference(source)
    pinned = ref.digest.removeprefix("sha256:") if ref.digest else None
    if pinned is not None:
        if given is not None and given != pinned:
            raise RefusedBundleError(f"--sha256 {given} disagrees with the reference's digest "
                                     f"sha256:{pinned}", where=source,
                                     hint="check which one is right")
        digest = pinned
    elif given is not None:
        digest = given
    else:
        raise RefusedBundleError(
            "no digest to check the image manifest against (a tag can move)", where=source,
            hint="install the pinned reference `builder push` printed, "
            "oci://REGISTRY/REPO@sha256:..., or give the manifest digest with --sha256")
    image = ref.with_digest(f"sha256:{digest}")
    return ResolvedSource(
        location=f"{OCI_SCHEME}{image}", image=image,
        expect=Expectation(sha256=digest, vouched_by="reference's digest" if pinned
                           else "--sha256"))


def _from_catalog(name: str, version: str | None, *, index: str, given: str | None,
                  target: str, transport: Transport) -> ResolvedSource:
    loaded = load_catalog(index, read=lambda s: transport.read_bytes(s, limit=64 << 20))
    entry = loaded.catalog.resolve(name, version, target, where=loaded.location)
    vouched = f"catalog {loaded.location}"
    if given is not None and given != entry.sha256:
        raise RefusedBundleError(f"--sha256 {given} disagrees with the {vouched}: {entry.sha256}",
                                 where=entry.filename, hint="check which one is right")
    image = entry.image
    return ResolvedSource(
        fs_image=None if image is None else FsImage(
            kind=image.kind, location=loaded.file_location(image.filename),
            sha256=image.sha256, size=image.size),
        location=loaded.archive_location(entry),
        expect=Expectation(sha256=entry.sha256, size=entry.size, name=entry.name,
                           version=entry.version, target=entry.target,
                           input_digest=entry.input_digest, glibc_floor=entry.glibc_floor,
                           glibc_floor_known=True, files=entry.files,
                           unpacked_bytes=entry.unpacked_bytes, vouched_by=vouched))


def _from_archive(archive: str, given: str | None, transport: Transport) -> ResolvedSource:
    sidecar_at = sidecar_location(archive)
    sidecar = _read_sidecar(sidecar_at, transport) if sidecar_at else None
    if sidecar is None:
        if given is None:
            raise RefusedBundleError(
                "no sha256 to check the archive against", where=archive,
                hint="give --sha256 HEX, keep the sidecar .json beside the archive, or install "
                "by name from a catalog (--index)")
        return ResolvedSource(location=archive,
                              expect=Expectation(sha256=given, vouched_by="--sha256"))
    vouched = f"sidecar {sidecar_at}"
    recorded, manifest = sidecar
    fs_image = _fs_image(manifest.pop("image", None), archive=archive, where=str(sidecar_at))
    if given is not None and given != recorded["sha256"]:
        raise RefusedBundleError(f"--sha256 {given} disagrees with the {vouched}: "
                                 f"{recorded['sha256']}", where=archive,
                                 hint="check which one is right")
    return ResolvedSource(
        location=archive,
        expect=Expectation(sha256=recorded["sha256"], size=recorded["size"],
                           name=manifest.get("name"), version=manifest.get("version"),
                           target=manifest.get("target"), manifest=canonical(manifest),
                           vouched_by=vouched),
        fs_image=fs_image)


IMAGE_KINDS = ("squashfs",)


def _fs_image(data: Any, *, archive: str, where: str) -> FsImage | None:
    """The sidecar's (or catalog's) ``image`` object; its file is beside the archive."""
    if data is None:
        return None
    try:
        kind, filename, sha, size = data["kind"], data["filename"], data["sha256"], data["size"]
        if not (kind in IMAGE_KINDS and isinstance(filename, str)
                and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", filename)
                and isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)
                and isinstance(size, int) and not isinstance(size, bool) and size > 0):
            raise ValueError("image.kind/filename/sha256/size malformed")
    except (ValueError, KeyError, TypeError) as exc:
        raise RefusedBundleError(f"unreadable image entry: {exc}", where=where,
                                 hint="rebuild the sidecar, or install with --extract") from exc
    if is_url(archive):
        location = urllib.parse.urljoin(archive, filename)
    else:
        location = str(Path(archive).with_name(filename))
    return FsImage(kind=kind, location=location, sha256=sha, size=size)


def _read_sidecar(location: str, transport: Transport
                  ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        raw = transport.read_bytes(location, limit=MAX_SIDECAR_BYTES)
    except NetworkError as exc:
        if exc.missing:
            return None
        raise
    try:
        data = json.loads(raw)
        recorded = data["archive"]
        if not (isinstance(recorded["sha256"], str)
                and re.fullmatch(r"[0-9a-f]{64}", recorded["sha256"])
                and isinstance(recorded["size"], int)):
            raise ValueError("archive.sha256/size malformed")
    except (ValueError, KeyError, TypeError) as exc:
        raise RefusedBundleError(f"unreadable sidecar: {exc}", where=location,
                                 hint="delete or rebuild the sidecar, or give --sha256") from exc
    return recorded, {k: v for k, v in data.items() if k != "archive"}
