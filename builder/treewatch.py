"""Watching a tree: snapshots, and what changed between two of them (the build steps and the
build-time checks both ask).

A snapshot records each entry's type, mode, size, times, inode and link target, so a step's
changes are found without reading 270 MB twice per step. A file rewritten within the
filesystem's timestamp granularity of the snapshot could keep every stat field (git's "racy"
entries); such recent files are hashed when the snapshot is taken and compared by content.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from builder.fsutil import CHUNK

# A file changed this shortly before a snapshot began is also hashed: a later write could land
# in the same timestamp tick (the kernel's coarse clock: 1-10 ms) and keep every stat field.
# Timestamps in whole seconds mean a filesystem that only keeps seconds (or two).
RACY_NS = 50_000_000
COARSE_RACY_NS = 2_000_000_000


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    CHANGED = "changed"  # content, mode, type or link target (or rewritten with equal bytes)
    REMOVED = "removed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    path: str  # relative to the watched root, POSIX-style
    kind: ChangeKind
    is_dir: bool = False

    @property
    def line(self) -> str:
        """``added P``, ``changed P`` or ``removed P``."""
        return f"{self.kind} {self.path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    kind: str  # "file", "dir", "link" or "other" (fifo, socket, device)
    mode: int  # permission bits
    size: int = 0
    mtime_ns: int = 0  # also kept for directories (``diff(..., dir_times=True)``)
    ctime_ns: int = 0
    ino: int = 0
    target: str | None = None  # a link's target
    digest: str | None = None  # sha256 of a file changed just before the snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    root: Path
    entries: dict[str, Entry]  # relative POSIX path -> entry; the root itself is not listed


def snapshot(root: Path) -> Snapshot:
    """Every entry below ``root`` (symlinks not followed)."""
    taken = time.time_ns()
    entries: dict[str, Entry] = {}
    pending = [""]
    while pending:
        prefix = pending.pop()
        with os.scandir(os.path.join(root, prefix)) as it:  # noqa: PTH118 - hot loop
            for item in it:
                rel = f"{prefix}{item.name}"
                st = item.stat(follow_symlinks=False)
                entries[rel] = _entry(item.path, st, taken=taken)
                if stat.S_ISDIR(st.st_mode):
                    pending.append(rel + "/")
    return Snapshot(root=root, entries=entries)


def _entry(path: str, st: os.stat_result, *, taken: int) -> Entry:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return Entry(kind="dir", mode=mode, mtime_ns=st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)  # noqa: PTH115 - hot loop over str paths
        return Entry(kind="link", mode=0, target=target, ctime_ns=st.st_ctime_ns, ino=st.st_ino)
    regular = stat.S_ISREG(st.st_mode)
    latest = max(st.st_ctime_ns, st.st_mtime_ns)
    window = COARSE_RACY_NS if latest % 1_000_000_000 == 0 else RACY_NS
    recent = regular and latest >= taken - window
    return Entry(kind="file" if regular else "other", mode=mode, size=st.st_size,
                 mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, ino=st.st_ino,
                 digest=_sha256(path) if recent else None)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # noqa: PTH123
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def diff(before: Snapshot, after: Snapshot, *, dir_times: bool = False) -> tuple[Change, ...]:
    """What changed from ``before`` to ``after`` (two snapshots of the same root), by path.
    A directory counts as changed by its type and mode, and with ``dir_times`` by its mtime too
    (a tree that must stay byte-for-byte as archived)."""
    changes = []
    for path in sorted(before.entries.keys() | after.entries.keys()):
        old, new = before.entries.get(path), after.entries.get(path)
        if old is None and new is not None:
            changes.append(Change(path=path, kind=ChangeKind.ADDED, is_dir=new.kind == "dir"))
        elif new is None and old is not None:
            changes.append(Change(path=path, kind=ChangeKind.REMOVED, is_dir=old.kind == "dir"))
        elif old is not None and new is not None and _changed(old, new, after.root / path,
                                                              dir_times=dir_times):
            changes.append(Change(path=path, kind=ChangeKind.CHANGED, is_dir=new.kind == "dir"))
    return tuple(changes)


def _changed(old: Entry, new: Entry, path: Path, *, dir_times: bool) -> bool:
    if old.kind != new.kind or old.mode != new.mode or old.target != new.target:
        return True
    if old.kind == "dir":  # entries added or removed below show up themselves
        return dir_times and old.mtime_ns != new.mtime_ns
    if (old.size, old.mtime_ns, old.ctime_ns, old.ino) != (new.size, new.mtime_ns,
                                                           new.ctime_ns, new.ino):
        return True
    return _content_changed(old, new, path)


def _content_changed(old: Entry, new: Entry, path: Path) -> bool:
    """Same stat fields: only a file hashed as racy in ``old`` can still differ."""
    if old.digest is None:
        return False
    if new.digest is not None:  # hashed when ``after`` was taken: no need to read it again
        return new.digest != old.digest
    try:
        return _sha256(str(path)) != old.digest
    except OSError:  # gone (or unreadable) since ``after`` was taken
        return True
