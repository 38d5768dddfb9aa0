"""The OCI image of a bundle as values: descriptors, the image config, the image manifest.

Pure functions from the bundle's manifest to the bytes a registry or an image layout stores.
Every JSON document is compact canonical JSON (sorted keys, no spaces), so equal bundles give
equal blobs and therefore equal digests.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

from builder.errors import BuilderError
from builder.fsutil import sha256_bytes
from builder.layout import MANIFEST, SERVICE_DEF

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

# image manifest annotations: the standard ones, then ours (values are strings)
ANN_TITLE = "org.opencontainers.image.title"
ANN_VERSION = "org.opencontainers.image.version"
ANN_DESCRIPTION = "org.opencontainers.image.description"
ANN_REF_NAME = "org.opencontainers.image.ref.name"  # the tag, in an image layout's index
ANN_MANIFEST = "io.builder.manifest"  # manifest.json, verbatim
ANN_SERVICE_DEF = "io.builder.service-def"  # service-def.json, verbatim, when the bundle has one
ANN_FILE_PREFIX = "io.builder.file."  # any other top-level file of the bundle, verbatim
ANN_UI = "io.builder.ui"  # the manifest's ui table, canonical JSON
ANN_TARGET = "io.builder.target"
ANN_FINAL_ROOT = "io.builder.final-root"
ANN_INPUT_DIGEST = "io.builder.input-digest"

# image config labels: SimPhoNy-remote's (remoteappmanager.docker.docker_labels), made from the
# manifest's ui table; the manifest's own "labels" (ai.backend.service-ports) are copied as well
SIMPHONY = "eu.simphony-project.docker"
SIMPHONY_TYPES = ("webapp", "vncapp")  # what it knows; a cli bundle has no type label
SIMPHONY_ENV_RE = re.compile(r"^[A-Z0-9_]+$")  # names its env.<x-y> labels give back (X_Y)

# bundle files carried as annotations under a documented key; others use ANN_FILE_PREFIX
FILE_ANNOTATIONS = {MANIFEST: ANN_MANIFEST, SERVICE_DEF: ANN_SERVICE_DEF}
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def canonical_bytes(data: Any) -> bytes:
    """Compact canonical JSON: the exact bytes that get hashed."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + sha256_bytes(data)


def annotation_key(filename: str) -> str:
    return FILE_ANNOTATIONS.get(filename, ANN_FILE_PREFIX + filename)


def filename_of(key: str) -> str | None:
    """The bundle file an annotation key carries, or None for other annotations."""
    for filename, known in FILE_ANNOTATIONS.items():
        if key == known:
            return filename
    if key.startswith(ANN_FILE_PREFIX):
        return key[len(ANN_FILE_PREFIX):]
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    media_type: str
    digest: str  # "sha256:<hex>"
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Descriptor:
        return cls(media_type=media_type, digest=digest_of(data), size=len(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleInfo:
    """What the image needs from a bundle: its manifest facts and its top-level files."""

    name: str
    version: str
    summary: str
    arch: str  # "x86_64" | "aarch64"
    target: str
    final_root: str
    input_digest: str
    source_date_epoch: int
    ui: str  # canonical JSON of the manifest's ui table
    files: tuple[tuple[str, str], ...]  # (top-level file name, UTF-8 text), sorted by name
    labels: tuple[tuple[str, str], ...] = ()  # the image config's Labels, sorted by key


def bundle_info(manifest_text: str, files: dict[str, str], *, where: str) -> BundleInfo:
    """Read the facts from ``manifest.json``; refuse a manifest that lacks them."""
    try:
        data = json.loads(manifest_text)
    except ValueError as exc:
        raise BuilderError(f"manifest.json is not valid JSON: {exc}", where=where) from exc
    if not isinstance(data, dict):
        raise BuilderError("manifest.json is not a JSON object", where=where)
    wanted = ("name", "version", "arch", "target", "final_root", "input_digest")
    missing = [k for k in wanted if not isinstance(data.get(k), str)]
    if missing:
        raise BuilderError(f"missing or not strings: {', '.join(missing)}", where=where,
                           hint="is this a builder bundle?")
    if data["arch"] not in GOARCH:
        raise BuilderError(f"no OCI architecture for {data['arch']!r}", where=where,
                           hint=f"builder pushes {', '.join(sorted(GOARCH))} bundles")
    epoch = data.get("source_date_epoch", 0)
    ui = data.get("ui") or {}
    labels = {**simphony_labels(ui if isinstance(ui, dict) else {}, where=where),
              **{str(k): str(v) for k, v in (data.get("labels") or {}).items()}}
    return BundleInfo(
        name=data["name"],
        version=data["version"],
        summary=str(data.get("summary") or ""),
        arch=data["arch"],
        target=data["target"],
        final_root=data["final_root"],
        input_digest=data["input_digest"],
        source_date_epoch=epoch if isinstance(epoch, int) and epoch >= 0 else 0,
        ui=canonical_bytes(ui).decode(),
        files=tuple(sorted(files.items())),
        labels=tuple(sorted(labels.items())),
    )


def simphony_labels(ui: dict[str, Any], *, where: str) -> dict[str, str]:
    """SimPhoNy-remote's image labels from the manifest's ui table: ui_name, icon_128 (the
    base64 PNG), description, type, and an empty ``env.<name>`` per accepted variable (it reads
    ``env.x11-width`` as X11_WIDTH)."""
    labels: dict[str, str] = {}
    if isinstance(ui.get("name"), str):
        labels[f"{SIMPHONY}.ui_name"] = ui["name"]
    if isinstance(ui.get("icon_128"), str):
        labels[f"{SIMPHONY}.icon_128"] = ui["icon_128"]
    if isinstance(ui.get("description"), str) and ui["description"]:
        labels[f"{SIMPHONY}.description"] = ui["description"]
    if ui.get("kind") in SIMPHONY_TYPES:
        labels[f"{SIMPHONY}.type"] = ui["kind"]
    for name in ui.get("accepted_env") or ():
        if not isinstance(name, str) or not SIMPHONY_ENV_RE.match(name):
            raise BuilderError(
                f"accepted variable {name!r} cannot be a SimPhoNy env label (it reads "
                "env.<name> back upper-cased, so only A-Z, 0-9 and _ survive)", where=where,
                hint="rename the variable in the recipe's app.ui.accepted_env and rebuild")
        labels[f"{SIMPHONY}.env.{name.lower().replace('_', '-')}"] = ""
    return labels


def image_config(info: BundleInfo, *, diff_id: str) -> bytes:
    """A minimal OCI image config: platform, one layer, created at SOURCE_DATE_EPOCH."""
    created = datetime.datetime.fromtimestamp(info.source_date_epoch, tz=datetime.UTC)
    return canonical_bytes({
        "architecture": GOARCH[info.arch],
        "os": "linux",
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {"Labels": dict(info.labels)} if info.labels else {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })


def image_annotations(info: BundleInfo) -> dict[str, str]:
    annotations = {
        ANN_TITLE: info.name,
        ANN_VERSION: info.version,
        ANN_TARGET: info.target,
        ANN_FINAL_ROOT: info.final_root,
        ANN_INPUT_DIGEST: info.input_digest,
        ANN_UI: info.ui,
    }
    if info.summary:
        annotations[ANN_DESCRIPTION] = info.summary
    for filename, text in info.files:
        annotations[annotation_key(filename)] = text
    return annotations


def image_manifest(*, config: Descriptor, layer: Descriptor,
                   annotations: dict[str, str]) -> bytes:
    return canonical_bytes({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.to_dict(),
        "layers": [layer.to_dict()],
        "annotations": annotations,
    })


def platform_of(info: BundleInfo) -> dict[str, str]:
    return {"architecture": GOARCH[info.arch], "os": "linux"}
