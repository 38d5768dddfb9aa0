"""Writes the recipes' 128x128 PNG icons (plain shapes, a few hundred bytes each):
``python recipes/icons/make_icons.py``. Deterministic: the same bytes on every run."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIZE = 128
# name -> (background, foreground) RGB and the shape drawn in the foreground colour
ICONS = {
    "jupyter": ((255, 255, 255), (243, 118, 38), "ring"),
    "jupyterlab": ((243, 118, 38), (255, 255, 255), "ring"),
    "tensorboard": ((255, 255, 255), (255, 111, 0), "bars"),
    "vscode": ((0, 122, 204), (255, 255, 255), "chevron"),
}


def inside(shape: str, x: int, y: int) -> bool:
    cx = cy = SIZE / 2 - 0.5
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    if shape == "ring":
        return 34**2 <= r2 <= 50**2
    if shape == "bars":
        return any(left <= x < left + 20 and y >= SIZE - 16 - height
                   for left, height in ((18, 40), (54, 72), (90, 96))) and y < SIZE - 16
    # chevron ">": two thick diagonal strokes
    x = SIZE - 1 - x
    return 24 <= x <= 104 and abs(abs(y - cy) - (x - 24) * 0.6) < 12 and x < 88


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(background: tuple[int, int, int], foreground: tuple[int, int, int], shape: str) -> bytes:
    rows = b"".join(b"\x00" + bytes(int(inside(shape, x, y)) for x in range(SIZE))
                    for y in range(SIZE))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 3, 0, 0, 0)  # 8-bit, indexed colour
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"PLTE", bytes(background) + bytes(foreground))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for name, (bg, fg, shape) in ICONS.items():
        (here / f"{name}.png").write_bytes(png(bg, fg, shape))
