"""Deterministic ``.tar.gz`` of a directory tree: equal trees give identical bytes."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

from builder.fsutil import atomic_output, sha256_file
from builder.tarutil import add_normalized


def sorted_entries(root: Path, top: str) -> list[str]:
    """Every path under ``root/top`` (``top`` included), posix, parents before children."""
    found = [top]
    for dirpath, dirnames, filenames in os.walk(root / top):
        rel = Path(dirpath).relative_to(root).as_posix()
        found += [f"{rel}/{name}" for name in dirnames + filenames]
    return sorted(found)


def write_tar_gz(root: Path, top: str, dest: Path, *, mtime: int, compresslevel: int = 6) -> str:
    """Archive ``root/top`` as ``dest`` (atomically) and return its sha256.

    Sorted entries, PAX format, fixed mtime, uid/gid 0, empty owner names, modes 0644/0755,
    gzip header without time or file name.
    """
    with atomic_output(dest) as tmp:
        with (
            tmp.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                          compresslevel=compresslevel) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            add_normalized(tar, root, sorted_entries(root, top), mtime=mtime)
        return sha256_file(tmp)
