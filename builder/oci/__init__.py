"""OCI images of bundles: ``builder push``, ``builder export --oci`` and :func:`pull_bundle`.

The image's root is the bundle's ``app/`` (so Kubernetes ImageVolume mounts it straight at
``/opt/apps/<name>``); ``manifest.json`` and ``service-def.json`` travel as annotations of the
image manifest. The layer is re-made from the bundle's tar stream with normalised headers and a
gzip header without time or name, so equal bundles give equal image digests.
"""

from typing import TYPE_CHECKING

from builder import lazy_exports

if TYPE_CHECKING:  # the same names, imported on first use (lazy_exports)
    from builder.oci.image import Image, write_image
    from builder.oci.layout import Exported, export_layout
    from builder.oci.pull import pull_bundle
    from builder.oci.push import Pushed, push_bundle
    from builder.oci.reference import ImageRef, ImageReferenceError, parse_reference
    from builder.oci.registry import Credentials

_EXPORTS = {
    "Credentials": "builder.oci.registry",
    "Exported": "builder.oci.layout",
    "Image": "builder.oci.image",
    "ImageRef": "builder.oci.reference",
    "ImageReferenceError": "builder.oci.reference",
    "Pushed": "builder.oci.push",
    "export_layout": "builder.oci.layout",
    "parse_reference": "builder.oci.reference",
    "pull_bundle": "builder.oci.pull",
    "push_bundle": "builder.oci.push",
    "write_image": "builder.oci.image",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Credentials",
    "Exported",
    "Image",
    "ImageRef",
    "ImageReferenceError",
    "Pushed",
    "export_layout",
    "parse_reference",
    "pull_bundle",
    "push_bundle",
    "write_image",
]
