"""Checks of the build's environment made before any expensive work: the output and cache
directories must be directories this process can write (a file in the way, a read-only mount or
a missing permission is reported at once, not after minutes of building)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from builder.errors import BuilderError


def writable_dir(path: Path, *, what: str, hint: str) -> None:
    """Make sure ``path`` is a directory this process can create files in, or can be made one
    (nothing is created: when it is missing, its nearest existing parent is probed)."""
    if path.exists() and not path.is_dir():
        raise BuilderError(f"{what} is not a directory", where=str(path), hint=hint)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    verb = "write to" if existing == path else "create"
    if not existing.is_dir():
        raise BuilderError(f"cannot {verb} the {what}: {os.strerror(errno.ENOTDIR)}",
                           where=str(path), hint=f"{existing} is a file; {hint}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".builder-probe-", dir=existing)
    except OSError as exc:
        raise BuilderError(f"cannot {verb} the {what}: {exc.strerror or exc}",
                           where=str(path), hint=hint) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        Path(probe).unlink()


def check_build_dirs(*, out_dir: Path, cache_dir: Path) -> None:
    writable_dir(out_dir, what="output directory",
                 hint="pass a writable directory with --out (default: dist/)")
    check_cache_dir(cache_dir)


def check_cache_dir(cache_dir: Path) -> None:
    writable_dir(cache_dir, what="cache directory",
                 hint="make it a writable directory, or choose another one with "
                 "BUILDER_CACHE_DIR")
