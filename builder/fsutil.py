"""Small filesystem helpers shared by every stage: hashing, atomic writes, canonical JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from builder import scratch
from builder.scratch import claimed

CHUNK = 1 << 20

rmtree = scratch.rmtree  # every stage removes trees; kept here where they look for it


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(data: Any) -> str:
    """Sorted keys, two-space indent, final newline: equal data gives identical bytes."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write via a sibling temporary file and rename, so readers see all or nothing."""
    with atomic_output(path, mode=mode) as tmp, tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def atomic_output(path: Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary sibling path to fill; rename it onto ``path`` only on success.
    The temporary has an owner lock (``builder.scratch``): if this process dies before the
    rename, a later ``collect`` of the directory removes it."""
    with claimed(path.parent, prefix=f".{path.name}.", suffix=".tmp") as tmp_path:
        tmp_path.touch(mode=0o600)
        yield tmp_path
        tmp_path.chmod(mode)
        tmp_path.replace(path)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class HashingReader:
    """A file object that hashes (sha256) and counts every byte read through it."""

    def __init__(self, raw: Readable) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left, e.g. a tar's end-of-archive padding."""
        while self.read(CHUNK):
            pass
