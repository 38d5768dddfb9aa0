"""Find leftover build paths in any regular file of a tree (text, scripts, pyc, ELF alike)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from builder.fsutil import CHUNK
from builder.relocate.model import ScanHit


def _found(path: str, needles: tuple[bytes, ...]) -> set[bytes]:
    """Needles occurring in the file, reading in chunks that overlap by the longest needle."""
    keep = max(len(n) for n in needles) - 1
    found: set[bytes] = set()
    tail = b""
    with open(path, "rb") as fh:  # noqa: PTH123 - hot loop over str paths
        while chunk := fh.read(CHUNK):
            window = tail + chunk
            found.update(n for n in needles if n not in found and n in window)
            if len(found) == len(needles):
                break
            tail = window[-keep:] if keep else b""
    return found


def scan_for_paths(root: Path, needles: tuple[str, ...]) -> tuple[ScanHit, ...]:
    """Every (file, needle) where a regular file below ``root`` contains ``needle``.

    Symlinks are not followed (a link's target string is not file content). Sorted by path.
    """
    encoded = {os.fsencode(n): n for n in needles if n}
    if not encoded:
        return ()
    patterns = tuple(sorted(encoded))
    hits: list[ScanHit] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)  # noqa: PTH118
            if os.path.islink(full) or not os.path.isfile(full):  # noqa: PTH113, PTH114
                continue
            relative = PurePosixPath(os.path.relpath(full, root))
            hits.extend(
                ScanHit(path=relative, needle=encoded[n]) for n in sorted(_found(full, patterns))
            )
    return tuple(sorted(hits, key=lambda h: (str(h.path), h.needle)))
