"""Deterministic ``.tar.zst``: sorted entries, fixed mtime, uid/gid 0, normalised modes.

The same tree gives the same bytes whatever the umask, the walk order of the filesystem,
the clock, the user or the number of CPU cores (zstd's multi-threaded format does not depend
on the worker count).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import zstandard

from builder.errors import BuilderError
from builder.layout import FIRST_MEMBERS
from builder.tarutil import add_normalized

DEFAULT_MTIME = 315532800  # 1980-01-01T00:00:00Z; SOURCE_DATE_EPOCH overrides it
ZSTD_LEVEL = 10
FIRST = FIRST_MEMBERS  # read first by `inspect` and agents


def _walk(root: Path) -> Iterator[str]:
    """Relative POSIX paths of every entry under root, sorted, directories before contents."""
    entries: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        rel = Path(directory).relative_to(root)
        for name in dirnames + filenames:
            entries.append((rel / name).as_posix())
        # do not descend into symlinked directories: os.walk lists them in dirnames
        dirnames[:] = [d for d in dirnames if not (Path(directory) / d).is_symlink()]
    first = [e for e in FIRST if e in entries]
    rest = sorted(e for e in entries if e not in FIRST)
    return iter(first + rest)


def write_tar(root: Path, out: IO[bytes], *, mtime: int) -> int:
    """Write the tar stream of ``root``; returns the number of entries."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        return add_normalized(tar, root, _walk(root), mtime=mtime)


def write_archive(root: Path, dest: Path, *, mtime: int = DEFAULT_MTIME,
                  level: int = ZSTD_LEVEL) -> int:
    """Write ``root`` as a deterministic ``.tar.zst`` at ``dest``; returns the entry count."""
    compressor = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True)
    with dest.open("wb") as raw, compressor.stream_writer(raw, closefd=False) as writer:
        return write_tar(root, writer, mtime=mtime)


def read_member(archive: Path, name: str) -> bytes | None:
    """Read one member (e.g. ``manifest.json``) without extracting the rest."""
    try:
        with archive.open("rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    if member.name == name and member.isfile():
                        fh = tar.extractfile(member)
                        return fh.read() if fh else None
    except (tarfile.TarError, zstandard.ZstdError, OSError) as exc:
        raise BuilderError(f"cannot read bundle: {exc}", where=str(archive),
                           hint="is this a builder bundle (.tar.zst)?") from exc
    return None
