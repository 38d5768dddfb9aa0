"""Minimal ELF files (a header, no sections) of a chosen architecture, for unit tests."""

from __future__ import annotations

import struct
from pathlib import Path

E_MACHINE = {"x86_64": 62, "aarch64": 183}


def write_elf(path: Path, arch: str) -> Path:
    """An ELF64 little-endian shared object header for ``arch`` at ``path``."""
    header = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
              + struct.pack("<HHIQQQIHHHHHH", 3, E_MACHINE[arch], 1, 0, 0, 0, 0, 64, 56, 0, 64,
                            0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header)
    return path
