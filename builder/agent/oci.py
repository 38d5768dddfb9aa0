"""Installing from an OCI image made by ``builder push``: ``oci://REGISTRY/REPO@sha256:...``.

The image manifest's digest, pinned in the reference, is the hash checked first: it pins the
config and layer digests, which :func:`builder.oci.pull_bundle` checks before opening them.
Before the layer is downloaded, the manifest's ``io.builder.manifest`` annotation (the bundle's
``manifest.json``, verbatim) gets every check an archive's first member gets: the bundle schema,
``final_root`` and ``target``, the unpacked-size limit and the free disk space. After the pull
the tree is walked: only ``manifest.json``, ``service-def.json`` and ``app/`` at the top; below
``app/`` only directories, regular files (no hard links, no set-uid/set-gid bits) and symlinks
that resolve inside ``app/``; modes normalised to 0644/0755 like archive installs; and the
manifest's ``sizes`` must equal what was written.

The layer is extracted by ``pull_bundle`` with :class:`builder.agent.extract.LayerExtraction`:
each member goes through the same checks as an archive member, during the extraction (a hostile
member is refused before it is written, the manifest's byte and file budget bounds every member),
and every file is hashed as it is written, for the RECORD check.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builder.agent.errors import RefusedBundleError
from builder.agent.extract import LayerExtraction, Limits, check_record
from builder.agent.manifest_check import (
    CheckedManifest,
    Counted,
    Expectation,
    canonical,
    check_manifest,
    check_sizes,
)
from builder.bundle.record import Item, hash_file
from builder.errors import BuilderError, HashMismatchError
from builder.layout import APP, MANIFEST, SERVICE_DEF
from builder.net import Deadlines
from builder.oci import pull_bundle
from builder.oci.http import Http, UrllibHttp
from builder.oci.model import ANN_MANIFEST, digest_of
from builder.oci.reference import ImageRef
from builder.oci.registry import Credentials, Registry

IMAGE_REFUSED_HINT = "the image is malformed or malicious; nothing was installed"


@dataclass(frozen=True, slots=True, kw_only=True)
class OciOptions:
    """How to reach registries: HTTP instead of HTTPS, an account, the HTTP port (tests)."""

    plain_http: bool = False
    credentials: Credentials | None = None
    http: Http | None = None  # None: urllib


def _refuse(what: str, where: str) -> RefusedBundleError:
    return RefusedBundleError(what, where=where, hint=IMAGE_REFUSED_HINT)


def pull_entry(image: ImageRef, dest: Path, *, expect: Expectation, options: OciOptions,
               limits: Limits, where: str, log: Callable[[str], None] = lambda _m: None
               ) -> tuple[CheckedManifest, Counted]:
    """Pull ``image`` (pinned by digest) into ``dest`` (must not exist) and check it whole."""
    if image.digest is None or image.digest != f"sha256:{expect.sha256}":
        raise BuilderError("an image is installed by its manifest digest only", where=where)
    http = options.http or UrllibHttp(deadlines=Deadlines())  # bounded like archives
    registry = Registry(host=image.api_host, plain_http=options.plain_http, http=http,
                        credentials=options.credentials)
    data, media_type = registry.get_manifest(image.repository, image.digest)
    if digest_of(data) != image.digest:
        raise HashMismatchError(what="image manifest", where=where, expected=image.digest,
                                actual=digest_of(data), hint=f"the {expect.vouched_by} "
                                "promises other bytes; nothing was installed")
    annotated, layer_size = _bundle_manifest(data, where=where)
    promised = check_manifest(annotated, expect, where=where)
    _check_room(promised, layer_size, limits, dest.parent, where=where)
    log(f"pulling {where}")
    layer = LayerExtraction(manifest=promised, limits=limits, where=where)
    pull_bundle(image, dest, plain_http=options.plain_http, credentials=options.credentials,
                http=http, manifest_data=(data, media_type), extract=layer)
    raw = (dest / MANIFEST).read_bytes() if (dest / MANIFEST).is_file() else b""
    manifest = check_manifest(raw, replace(expect, manifest=canonical(promised.data)),
                              where=where)
    counted = scan_pulled(dest, limits, where=where)
    check_sizes(manifest, counted, where=where)
    if layer.state is None:  # pragma: no cover (pull_bundle extracts or raises)
        raise _refuse("the layer was not extracted", where)
    found = dict(layer.state.found)  # hashed while extracted
    if counted.service_def_bytes is not None:
        found[SERVICE_DEF] = Item("f", 0o644, counted.service_def_bytes,
                                  hash_file(dest / SERVICE_DEF))
    check_record(manifest, dest, found, where=where)
    return manifest, counted


def _bundle_manifest(data: bytes, *, where: str) -> tuple[bytes, int]:
    """The bundle's manifest.json from the image manifest's annotation, and the layer's size."""
    try:
        document: Any = json.loads(data)
        text = document["annotations"][ANN_MANIFEST]
        layers = document.get("layers")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuilderError("not an image made by `builder push` (no io.builder.manifest "
                           "annotation)", where=where,
                           hint="install an image `builder push` made, pinned by digest"
                           ) from exc
    if not isinstance(text, str):
        raise _refuse("the io.builder.manifest annotation is not a string", where)
    size = 0
    if isinstance(layers, list) and layers and isinstance(layers[0], dict):
        declared = layers[0].get("size")
        size = declared if isinstance(declared, int) and declared > 0 else 0
    return text.encode("utf-8"), size


def _check_room(manifest: CheckedManifest, layer_size: int, limits: Limits, where_dir: Path,
                *, where: str) -> None:
    if manifest.unpacked_bytes > limits.max_unpacked_bytes:
        raise _refuse(f"manifest.json declares {manifest.unpacked_bytes} bytes unpacked, above "
                      f"the limit of {limits.max_unpacked_bytes}", where)
    need = manifest.unpacked_bytes + layer_size  # the layer blob sits beside app/ meanwhile
    with contextlib.suppress(OSError):
        st = os.statvfs(where_dir)
        free = st.f_bavail * st.f_frsize
        if need > free:
            raise BuilderError(f"not enough disk space: the image needs {need} bytes "
                               f"({layer_size} layer, {manifest.unpacked_bytes} unpacked), "
                               f"{free} are free", where=str(where_dir),
                               hint="free space, e.g. with `builder agent gc`")


def scan_pulled(entry: Path, limits: Limits, *, where: str) -> Counted:
    """Walk what ``pull_bundle`` wrote: refuse what an archive install refuses, count the rest,
    normalise modes (directories 0755, files 0644 or 0755)."""
    extra = sorted(p.name for p in entry.iterdir() if p.name not in (MANIFEST, SERVICE_DEF, APP))
    if extra:
        raise _refuse(f"unexpected files outside app/: {', '.join(extra)} (a bundle holds only "
                      "manifest.json, service-def.json and app/)", where)
    service_def_bytes = None
    for name in (MANIFEST, SERVICE_DEF):
        path = entry / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(f"{name} is not a regular file", where)
        if st.st_size > limits.max_metadata_bytes:
            raise _refuse(f"{name} has {st.st_size} bytes, more than the "
                          f"{limits.max_metadata_bytes} allowed", where)
        path.chmod(0o644)
        if name == SERVICE_DEF:
            service_def_bytes = st.st_size
    app = entry / APP
    if not stat.S_ISDIR(app.lstat().st_mode):
        raise _refuse("the image has no app/ directory", where)
    entry.chmod(0o755)
    app.chmod(0o755)
    files, size = _scan_app(app, limits, where=where)
    return Counted(app_files=files, app_bytes=size, service_def_bytes=service_def_bytes)


def _scan_app(app: Path, limits: Limits, *, where: str) -> tuple[int, int]:
    real_app = os.path.realpath(app)
    members = files = size = 0
    for directory, dirnames, filenames in os.walk(app):
        for name in dirnames + filenames:
            members += 1
            if members > limits.max_members:
                raise _refuse(f"more than {limits.max_members} members", where)
            path = Path(directory, name)
            rel = path.relative_to(app.parent).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                resolved = os.path.realpath(path)
                if resolved != real_app and not resolved.startswith(real_app + os.sep):
                    raise _refuse(f"symlink resolving outside app/: {rel!r} -> "
                                  f"{str(path.readlink())!r}", where)
            elif stat.S_ISDIR(st.st_mode):
                path.chmod(0o755)
            elif stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    raise _refuse(f"hard link refused: {rel!r}", where)
                if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    raise _refuse(f"set-uid/set-gid bit refused: {rel!r}", where)
                path.chmod(0o755 if st.st_mode & 0o111 else 0o644)
                files += 1
                size += st.st_size
            else:
                raise _refuse(f"special file refused: {rel!r}", where)
    return files, size
