"""Watching a tree: snapshots, what changed between two of them, and a private copy.

A snapshot records each entry's type, mode, size, times, inode and link target, so a step's
changes are found without reading 270 MB twice per step. A file rewritten within the
filesystem's timestamp granularity of the snapshot could keep every stat field (git's "racy"
entries); such recent files are hashed when the snapshot is taken and compared by content.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.fsutil import CHUNK
from builder.steps.model import Change, ChangeKind

# A file changed this shortly before a snapshot began is also hashed: a later write could land
# in the same timestamp tick (the kernel's coarse clock: 1-10 ms) and keep every stat field.
# Timestamps in whole seconds mean a filesystem that only keeps seconds (or two).
RACY_NS = 50_000_000
COARSE_RACY_NS = 2_000_000_000
SHEBANG_MAX = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    kind: str  # "file", "dir", "link" or "other" (fifo, socket, device)
    mode: int  # permission bits
    size: int = 0
    mtime_ns: int = 0
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
        return Entry(kind="dir", mode=mode)
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


def diff(before: Snapshot, after: Snapshot) -> tuple[Change, ...]:
    """What changed from ``before`` to ``after`` (two snapshots of the same root), by path."""
    changes = []
    for path in sorted(before.entries.keys() | after.entries.keys()):
        old, new = before.entries.get(path), after.entries.get(path)
        if old is None and new is not None:
            changes.append(Change(path=path, kind=ChangeKind.ADDED, is_dir=new.kind == "dir"))
        elif new is None and old is not None:
            changes.append(Change(path=path, kind=ChangeKind.REMOVED, is_dir=old.kind == "dir"))
        elif old is not None and new is not None and _changed(old, new, after.root / path):
            changes.append(Change(path=path, kind=ChangeKind.CHANGED, is_dir=new.kind == "dir"))
    return tuple(changes)


def _changed(old: Entry, new: Entry, path: Path) -> bool:
    if old.kind != new.kind or old.mode != new.mode or old.target != new.target:
        return True
    if old.kind == "dir":  # entries added or removed below show up themselves
        return False
    if (old.size, old.mtime_ns, old.ctime_ns, old.ino) != (new.size, new.mtime_ns,
                                                           new.ctime_ns, new.ino):
        return True
    return old.digest is not None and _sha256(str(path)) != old.digest


def copy_tree(source: Path, dest: Path) -> None:
    """A full, independent copy of ``source`` at ``dest`` (which must not exist): same modes,
    times and symlinks; copy-on-write clones where the filesystem has them (btrfs, XFS).

    Not hard links (``cp -al``), although that would be instant: a tool that rewrites a file
    in place (``open(path, "w")`` truncates the existing inode, as json/config writers do)
    would then write through the link into the other tree, and the two runs would no longer
    be independent (nor would the real tree be left as its own run made it).
    """
    if shutil.which("cp") is not None:
        proc = subprocess.run(["cp", "-a", "--reflink=auto", "--", str(source), str(dest)],
                              capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        shutil.rmtree(dest, ignore_errors=True)
        detail = proc.stderr.strip()
    else:
        try:
            shutil.copytree(source, dest, symlinks=True)
            return
        except (OSError, shutil.Error) as exc:
            detail = str(exc)
    raise BuilderError(f"cannot copy the app for the second run of the build steps: {detail}",
                       where=str(dest), hint="is there enough free space in the staging "
                       "directory's filesystem (TMPDIR)?")


def point_scripts_at(root: Path, *, bin_dir: Path, old: Path) -> None:
    """In a copy at ``root`` of the tree at ``old``: scripts in ``bin_dir`` that name the old
    tree's interpreter (installers write absolute shebangs, or a ``/bin/sh`` + ``exec`` line for
    long paths) now name the copy's, so a console script run in the copy works on the copy."""
    forms = sorted({os.fsencode(old), os.fsencode(os.path.realpath(old))}, key=len,
                   reverse=True)
    new = os.fsencode(root)
    if not bin_dir.is_dir():
        return
    for script in sorted(bin_dir.iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as fh:
            head = fh.read(SHEBANG_MAX)
        if not head.startswith(b"#!") or not any(f + b"/" in head for f in forms):
            continue
        data = script.read_bytes()
        for form in forms:
            data = data.replace(form + b"/", new + b"/")
        script.write_bytes(data)  # the same inode: its mode is kept
