"""Scratch paths that a later run can collect once their owner is gone.

Every scratch path ``X`` a build makes (a staging directory, a ``.tmp`` file beside an archive,
a download directory) has an owner lock ``X.owner`` beside it, created first and held with
``flock`` for as long as the process works on ``X``. The kernel drops the lock when the
process dies, however it dies (SIGKILL included), so a later :func:`collect` that can take the
lock knows ``X`` is abandoned and removes it. Only paths with such an owner file are touched:
anything else in the directory is not ours and stays.

Race: a collector may lock (and delete) an owner file in the instant between its creation
and its owner's ``flock``; the owner checks, after locking, that its file is still the one
on disk, and picks a new name if not (the usual lock-file dance).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWNER = ".owner"
STAGE_DIR = "stage"  # under the cache: one owned directory per build or lock in progress
MARK = b"builder "  # an owner file starts with this (then the owner's pid)


def rmtree(path: Path) -> None:
    """Remove a tree (or a file, or a symlink), also when some directories were made
    read-only."""

    def retry(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            Path(p).parent.chmod(0o755)
        func(p)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=retry)
        else:
            shutil.rmtree(path, onerror=retry)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A scratch path (not yet created) and the open, locked owner file that guards it."""

    path: Path
    fd: int

    @property
    def owner(self) -> Path:
        return owner_of(self.path)


def owner_of(path: Path) -> Path:
    return path.with_name(path.name + OWNER)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def claim(parent: Path, *, prefix: str, suffix: str = "") -> Claim:
    """A fresh name ``parent/<prefix><random><suffix>`` owned by this process until
    :func:`release`; the caller creates the path itself."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        owner = owner_of(path)
        try:
            fd = os.open(owner, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, owner) and not path.exists():
                os.write(fd, MARK + f"{os.getpid()}\n".encode())
                return Claim(path=path, fd=fd)
        except OSError:  # e.g. ENOSPC writing the mark: leave no owner file behind
            owner.unlink(missing_ok=True)
            os.close(fd)
            raise
        os.close(fd)  # a collector took it between open and flock: pick another name


def release(held: Claim) -> None:
    """Remove the scratch path (if still there), then the owner file, then drop the lock."""
    try:
        rmtree(held.path)
        held.owner.unlink(missing_ok=True)
    finally:
        os.close(held.fd)


@contextlib.contextmanager
def claimed(parent: Path, *, prefix: str, suffix: str = "") -> Iterator[Path]:
    """:func:`claim` for a ``with`` block; whatever is left at the path is removed on exit."""
    held = claim(parent, prefix=prefix, suffix=suffix)
    try:
        yield held.path
    finally:
        release(held)


@contextlib.contextmanager
def claimed_dir(parent: Path, *, prefix: str) -> Iterator[Path]:
    """A fresh, owned, empty directory under ``parent`` (mode 0700), removed on exit."""
    with claimed(parent, prefix=prefix) as path:
        path.mkdir(mode=0o700)
        yield path


def collect(parent: Path) -> tuple[Path, ...]:
    """Remove every scratch path in ``parent`` whose owner is gone; return what was removed.
    Live owners' paths and files without an owner file are left alone."""
    if not parent.is_dir():
        return ()
    removed = []
    for owner in sorted(parent.glob(f"*{OWNER}")):
        path = owner.with_name(owner.name[: -len(OWNER)])
        if _collect_one(owner, path):
            removed.append(path)
    return tuple(removed)


def _collect_one(owner: Path, path: Path) -> bool:
    try:
        fd = os.open(owner, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # gone meanwhile, or not a plain file we may open
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner is alive
        if not _same_file(fd, owner):
            return False  # another collector removed it and a new owner took the name
        if os.read(fd, len(MARK)) != MARK:
            return False  # not an owner file of ours: leave it and its companion alone
        rmtree(path)
        owner.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)
