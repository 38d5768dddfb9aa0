"""Locked source distributions into the content-addressed cache, fetched from their locked URL
(not through pip, which would not fetch an sdist for another platform) and hash-checked."""

from __future__ import annotations

from pathlib import Path

from builder.errors import BuilderError
from builder.fetch.wheels import cache_path, verify_wheel
from builder.lock.model import LockedPackage
from builder.net import fetch_to

MAX_SDIST_BYTES = 512 << 20  # a source that sends more is cut off


def fetch_sdist(package: LockedPackage, *, cache_dir: Path, progress: bool = False) -> Path:
    """The sdist, downloaded from its locked URL into the content-addressed cache, checked."""
    path = cache_path(cache_dir, package)
    if not path.is_file():
        if not package.url:
            raise BuilderError(f"the lock has no URL for the source distribution "
                               f"{package.filename}", where=package.name,
                               hint="lock again (builder lock RECIPE)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fetch_to(package.url, path, expected_sha256=package.sha256, progress=progress,
                 what=package.filename, max_bytes=MAX_SDIST_BYTES)
    verify_wheel(path, package, where=str(path))
    return path
