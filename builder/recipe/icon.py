"""A recipe's icon (``[app.ui] icon``): a 128x128 PNG file beside the recipe, shipped in the
bundle at ``app/share/icon-128.png`` and, base64-encoded, in the manifest's ``ui.icon_128``
(hence the catalog and the pushed image's SimPhoNy ``icon_128`` label).

The file is checked with a reader of the PNG container, not an image library: the 8-byte
signature, then the IHDR chunk first (13 bytes: width, height, bit depth, colour type, ...)
with a correct CRC, and an IEND chunk last. That is what a viewer needs to even start.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.fsutil import sha256_bytes
from builder.recipe.model import Recipe

ICON_PATH = "app/share/icon-128.png"  # where the bundle carries it (relative to the bundle root)
ICON_SIZE = 128
MAX_ICON_BYTES = 64 << 10  # it travels in labels and the catalog: keep it an icon
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IEND = b"\x00\x00\x00\x00IEND\xae\x42\x60\x82"  # length 0, type, CRC of "IEND"


@dataclass(frozen=True, slots=True, kw_only=True)
class Icon:
    data: bytes

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.data)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG; ValueError saying what is wrong otherwise."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("it is not a PNG file (no PNG signature)")
    header = data[len(PNG_SIGNATURE):len(PNG_SIGNATURE) + 25]
    if len(header) < 25:
        raise ValueError("it is a truncated PNG file (no IHDR chunk)")
    length, kind = struct.unpack(">I4s", header[:8])
    if kind != b"IHDR" or length != 13:
        raise ValueError("it is not a valid PNG file (the first chunk is not IHDR)")
    body, (crc,) = header[8:21], struct.unpack(">I", header[21:25])
    if zlib.crc32(b"IHDR" + body) != crc:
        raise ValueError("it is a damaged PNG file (IHDR checksum mismatch)")
    if not data.endswith(IEND):
        raise ValueError("it is a truncated PNG file (it does not end with IEND)")
    width, height = struct.unpack(">II", body[:8])
    return width, height


def check_icon(data: bytes, *, where: str) -> Icon:
    """``data`` as the icon, or a BuilderError at ``where``."""
    hint = (f"give a {ICON_SIZE}x{ICON_SIZE} PNG file, e.g. convert in.svg -resize "
            f"{ICON_SIZE}x{ICON_SIZE} icon.png")
    if len(data) > MAX_ICON_BYTES:
        raise BuilderError(f"the icon is {len(data)} bytes, more than {MAX_ICON_BYTES}: it is "
                           "carried in image labels and the catalog", where=where, hint=hint)
    try:
        width, height = png_size(data)
    except ValueError as exc:
        raise BuilderError(f"the icon is unusable: {exc}", where=where, hint=hint) from None
    if (width, height) != (ICON_SIZE, ICON_SIZE):
        raise BuilderError(f"the icon is {width}x{height} pixels, not {ICON_SIZE}x{ICON_SIZE}",
                           where=where, hint=hint)
    return Icon(data=data)


def load_icon(recipe: Recipe) -> Icon | None:
    """The recipe's icon, read (relative to the recipe's directory) and checked; None without
    one."""
    if recipe.ui.icon is None:
        return None
    where = f"{recipe.path}: app.ui.icon"
    path = Path(recipe.path).parent / recipe.ui.icon
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BuilderError(f"cannot read the icon {recipe.ui.icon!r} ({path}): "
                           f"{exc.strerror or exc}", where=where,
                           hint="icon is a PNG file's path relative to the recipe") from None
    return check_icon(data, where=where)
