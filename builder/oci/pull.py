"""``pull_bundle``: fetch an image made by ``builder push`` and rebuild the bundle's content.

The result is the directory a bundle extracts to: ``manifest.json`` (and ``service-def.json``)
from the image manifest's annotations, ``app/`` from the single layer. The manifest is checked
against the digest when the reference names one, every blob against its digest before it is
opened, and the uncompressed layer against the config's ``diff_id`` while it is extracted with
the same member filter as every other archive builder opens.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from builder.errors import BuilderError, HashMismatchError
from builder.fsutil import HashingReader, rmtree
from builder.oci.http import Http, UrllibHttp
from builder.oci.layer import APP, WHITEOUT
from builder.oci.model import (
    ANN_MANIFEST,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_LAYER_TAR,
    MEDIA_MANIFEST,
    digest_of,
    filename_of,
)
from builder.oci.reference import ImageRef, parse_reference
from builder.oci.registry import Credentials, Registry
from builder.tarsafe import TAR_ERRORS, UnsafeMemberError, safe_filter

LAYER_TMP = ".layer.tmp"
# writes the members of the layer's uncompressed tar stream into app/ (which exists, empty)
LayerExtractor = Callable[[IO[bytes], Path], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    files: tuple[tuple[str, str], ...]  # (bundle file name, text) from the annotations
    layer_digest: str
    layer_media_type: str
    diff_id: str


def pull_bundle(ref: str | ImageRef, dest_dir: Path, *, plain_http: bool,
                credentials: Credentials | None = None, http: Http | None = None,
                manifest_data: tuple[bytes, str] | None = None,
                extract: LayerExtractor | None = None) -> Path:
    """Fetch ``ref`` and write ``manifest.json``, ``service-def.json`` and ``app/`` into
    ``dest_dir`` (created; it must not exist or be empty). Returns ``dest_dir``.

    ``manifest_data``: the image manifest and its media type, as the caller already fetched them
    (to check the bundle before the layer download); checked against the pinned digest again
    rather than fetched twice. ``extract``: what writes the layer's members into ``app/``
    (default: tarfile with builder's member filter); the agent passes its own, which checks each
    member against the bundle's manifest while it extracts.
    On any failure ``dest_dir`` is removed again (or emptied, if it existed).
    """
    image = ref if isinstance(ref, ImageRef) else parse_reference(ref)
    registry = Registry(host=image.api_host, plain_http=plain_http, http=http or UrllibHttp(),
                        credentials=credentials)
    plan = _plan(registry, image, manifest_data)
    existed = dest_dir.is_dir()
    if existed and any(dest_dir.iterdir()):
        raise BuilderError("the destination is not empty", where=str(dest_dir))
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        layer = dest_dir / LAYER_TMP
        registry.download_blob(image.repository, plan.layer_digest, layer)
        _extract_layer(layer, plan, dest_dir / APP, where=f"{image}: layer {plan.layer_digest}",
                       extract=extract or _filtered_extract)
        layer.unlink()
        for name, text in plan.files:
            (dest_dir / name).write_text(text, encoding="utf-8")
    except BaseException:
        if existed:
            for child in list(dest_dir.iterdir()):
                rmtree(child)
        else:
            rmtree(dest_dir)
        raise
    return dest_dir


def _plan(registry: Registry, image: ImageRef, fetched: tuple[bytes, str] | None) -> _Plan:
    where = str(image)
    if fetched is not None and image.digest is not None:
        data, media_type = fetched
    else:
        data, media_type = registry.get_manifest(image.repository, image.reference)
    if image.digest is not None and digest_of(data) != image.digest:
        raise HashMismatchError(what="image manifest", where=where, expected=image.digest,
                                actual=digest_of(data), hint="nothing was kept")
    manifest = _json_object(data, where=f"{where}: manifest")
    media_type = str(manifest.get("mediaType") or media_type)
    if media_type == MEDIA_INDEX:
        raise BuilderError("this is an image index (several images), not one image",
                           where=where, hint="pull the tag or digest `builder push` printed")
    if media_type != MEDIA_MANIFEST:
        raise BuilderError(f"not an OCI image manifest ({media_type or 'no media type'})",
                           where=where, hint="pull an image pushed by `builder push`")
    annotations = manifest.get("annotations") or {}
    layers = manifest.get("layers") or []
    config = manifest.get("config") or {}
    if (not isinstance(annotations, dict) or ANN_MANIFEST not in annotations
            or not isinstance(layers, list) or len(layers) != 1 or not isinstance(config, dict)
            or config.get("mediaType") != MEDIA_CONFIG):
        raise BuilderError("not an image made by `builder push` (no io.builder.manifest "
                           "annotation, or not exactly one layer)", where=where)
    files = []
    for key, value in sorted(annotations.items()):
        name = filename_of(key)
        if name is None:
            continue
        if not isinstance(value, str) or "/" in name or name in ("", ".", "..", APP, LAYER_TMP):
            raise BuilderError(f"bad bundle file annotation {key!r}", where=where)
        files.append((name, value))
    layer = layers[0] if isinstance(layers[0], dict) else {}
    if layer.get("mediaType") not in (MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR):
        raise BuilderError(f"unsupported layer type {layer.get('mediaType')!r}", where=where)
    config_data = registry.get_blob(image.repository, str(config.get("digest")))
    diff_ids = (_json_object(config_data, where=f"{where}: config").get("rootfs") or {}
                ).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != 1:
        raise BuilderError("the image config does not list one layer diff_id", where=where)
    return _Plan(files=tuple(files), layer_digest=str(layer.get("digest")),
                 layer_media_type=str(layer["mediaType"]), diff_id=str(diff_ids[0]))


def _json_object(data: bytes, *, where: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise BuilderError(f"not JSON: {exc}", where=where) from exc
    if not isinstance(value, dict):
        raise BuilderError("not a JSON object", where=where)
    return value


def _layer_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    if any(part.startswith(WHITEOUT) for part in PurePosixPath(member.name).parts):
        raise UnsafeMemberError(f"whiteout entry {member.name!r}: not a layer builder made",
                                where=member.name)
    return safe_filter(member, dest)


def _filtered_extract(stream: IO[bytes], app: Path) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        tar.extractall(app, filter=_layer_filter)  # noqa: S202 (filtered)


def _extract_layer(layer: Path, plan: _Plan, app: Path, *, where: str,
                   extract: LayerExtractor) -> None:
    app.mkdir()
    try:
        with layer.open("rb") as raw:
            stream: IO[bytes] | gzip.GzipFile = raw
            if plan.layer_media_type == MEDIA_LAYER_GZIP:
                stream = gzip.GzipFile(fileobj=raw, mode="rb")
            reader = HashingReader(stream)
            extract(cast(IO[bytes], reader), app)
            reader.drain()  # the end-of-archive padding counts too
    except UnsafeMemberError as exc:
        raise UnsafeMemberError(exc.what, where=f"{where}: {exc.where}", hint=exc.hint) from exc
    except tarfile.FilterError as exc:
        raise UnsafeMemberError(f"unsafe member refused: {exc}", where=where,
                                hint="the image is malformed or malicious") from exc
    except TAR_ERRORS as exc:
        raise BuilderError(f"cannot extract the layer: {exc}", where=where) from exc
    actual = "sha256:" + reader.digest.hexdigest()
    if actual != plan.diff_id:
        raise HashMismatchError(what="uncompressed layer (config diff_id)", where=where,
                                expected=plan.diff_id, actual=actual, hint="nothing was kept")
