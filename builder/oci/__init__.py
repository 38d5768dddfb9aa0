"""OCI images of bundles: ``builder push``, ``builder export --oci`` and :func:`pull_bundle`.

The image's root is the bundle's ``app/`` (so Kubernetes ImageVolume mounts it straight at
``/opt/apps/<name>``); ``manifest.json`` and ``service-def.json`` travel as annotations of the
image manifest. The layer is re-made from the bundle's tar stream with normalised headers and a
gzip header without time or name, so equal bundles give equal image digests.
"""

from builder.oci.image import Image, write_image
from builder.oci.layout import Exported, export_layout
from builder.oci.pull import pull_bundle
from builder.oci.push import Pushed, push_bundle
from builder.oci.reference import ImageRef, ImageReferenceError, parse_reference
from builder.oci.registry import Credentials

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
