"""A bundle as an OCI image: its blobs written into a ``sha256/<hex>`` blob directory."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.fsutil import atomic_write_bytes
from builder.oci.layer import Layer, write_layer
from builder.oci.model import (
    MEDIA_CONFIG,
    MEDIA_MANIFEST,
    BundleInfo,
    Descriptor,
    image_annotations,
    image_config,
    image_manifest,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    info: BundleInfo
    manifest: Descriptor
    config: Descriptor
    layer: Descriptor
    manifest_bytes: bytes
    config_bytes: bytes
    blobs: Path  # the directory holding sha256/<hex> for every blob above

    def blob_path(self, digest: str) -> Path:
        return blob_path(self.blobs, digest)


def blob_path(blobs: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return blobs / algorithm / hexdigest


def _write_layer_blob(bundle: Path, store: Path) -> Layer:
    store.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".layer-", suffix=".tmp", dir=store)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            layer = write_layer(bundle, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)
        tmp.replace(store / layer.descriptor.digest.partition(":")[2])
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return layer


def write_image(bundle: Path, blobs: Path) -> Image:
    """Write the layer, config and manifest blobs of ``bundle`` under ``blobs/sha256/``.

    Blobs already present are kept (same name, same bytes); a new one appears atomically.
    """
    if not bundle.is_file():
        raise BuilderError("no such bundle", where=str(bundle))
    if not bundle.name.endswith(".tar.zst"):
        raise BuilderError("not a bundle archive", where=str(bundle),
                           hint="give the .tar.zst that `builder build` printed")
    try:
        layer = _write_layer_blob(bundle, blobs / "sha256")
        config_bytes = image_config(layer.info, diff_id=layer.diff_id)
        config = Descriptor.of(MEDIA_CONFIG, config_bytes)
        manifest_bytes = image_manifest(config=config, layer=layer.descriptor,
                                        annotations=image_annotations(layer.info))
        manifest = Descriptor.of(MEDIA_MANIFEST, manifest_bytes)
        for descriptor, data in ((config, config_bytes), (manifest, manifest_bytes)):
            path = blob_path(blobs, descriptor.digest)
            if not path.is_file():
                atomic_write_bytes(path, data)
    except OSError as exc:
        raise BuilderError(f"cannot write: {exc.strerror or exc}", where=str(blobs)) from exc
    return Image(info=layer.info, manifest=manifest, config=config, layer=layer.descriptor,
                 manifest_bytes=manifest_bytes, config_bytes=config_bytes, blobs=blobs)
