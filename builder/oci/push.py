"""``builder push``: publish a bundle as an OCI image whose root is the app directory."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.oci.http import Http, UrllibHttp
from builder.oci.image import Image, write_image
from builder.oci.model import MEDIA_MANIFEST
from builder.oci.reference import ImageRef, parse_reference
from builder.oci.registry import Credentials, Registry


@dataclass(frozen=True, slots=True, kw_only=True)
class Pushed:
    ref: ImageRef  # as given (with its tag)
    digest: str  # of the image manifest
    uploaded: int  # blobs sent (the others were in the registry already)

    @property
    def pinned(self) -> ImageRef:
        """``REGISTRY/REPO@sha256:...``: what a cluster should pull."""
        return self.ref.with_digest(self.digest)


def push_image(image: Image, ref: ImageRef, registry: Registry, *,
               log: Callable[[str], None]) -> Pushed:
    """Upload the blobs the registry lacks, then the manifest under the reference's tag."""
    uploaded = 0
    for descriptor, body in ((image.layer, image.blob_path(image.layer.digest)),
                             (image.config, image.config_bytes)):
        if registry.blob_exists(ref.repository, descriptor.digest):
            log(f"blob {descriptor.digest[:19]} already in {ref.registry}")
            continue
        log(f"uploading {descriptor.digest[:19]} ({descriptor.size} bytes)")
        registry.upload_blob(ref.repository, descriptor.digest, body)
        uploaded += 1
    digest = registry.put_manifest(ref.repository, ref.reference, image.manifest_bytes,
                                   MEDIA_MANIFEST)
    return Pushed(ref=ref, digest=digest, uploaded=uploaded)


def push_bundle(bundle: Path, ref: str | ImageRef, *, plain_http: bool,
                credentials: Credentials | None = None, http: Http | None = None,
                work_dir: Path | None = None,
                log: Callable[[str], None] = lambda _m: None) -> Pushed:
    """Push ``bundle`` (a ``.tar.zst``) to ``REGISTRY/REPO:TAG``; the layer is made in a
    temporary directory (under ``work_dir`` if given) and removed afterwards."""
    image_ref = ref if isinstance(ref, ImageRef) else parse_reference(ref, require_tag=True)
    registry = Registry(host=image_ref.api_host, plain_http=plain_http,
                        http=http or UrllibHttp(), credentials=credentials)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="builder-oci-", dir=work_dir) as tmp:
        image = write_image(bundle, Path(tmp))
        log(f"image {image.manifest.digest} (layer {image.layer.size} bytes)")
        return push_image(image, image_ref, registry, log=log)
