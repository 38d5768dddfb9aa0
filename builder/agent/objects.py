"""The store's content-addressed objects: every regular file below an entry's ``app/`` is a hard
link to ``<store>/objects/<sha256[:2]>/<sha256>.<mode>``, so a file that several entries (two
apps, two builds of one app) hold is on the disk once, and an install writes only the files the
store does not hold yet.

The object's name is its key: the sha256 of its bytes and its mode (``644`` or ``755``; the two
modes an extraction writes). A hard link shares one inode, so a ``chmod`` or a write through any
entry changes the object and every entry holding it: entries are read-only by contract, and
``agent verify`` sees such a change in each of them. An object is reused only while it looks
untouched: a regular file with the size its RECORD line gives, the mode of its name and the
modification time every object gets when written (:data:`STAMP`, the archives' own 1980-01-01);
any write sets the modification time, so a damaged object is not linked again: a fresh copy is
written and replaces it under its name (entries holding the damaged inode keep it until they are
repaired). Objects nobody links any more (link count 1) are removed by ``agent gc``.

An install asks for ~20 k objects, most of them absent from a young store: each shard's names are
listed once (one ``listdir`` instead of one ``lstat`` per file) and kept, with the objects this
store object adds. A name in that list is still checked (``lstat``) before it is linked; a name
missing from it (an object another agent added since) only costs this install a copy of its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

STAMP = 315532800  # 1980-01-01T00:00:00Z, the mtime builder writes in archives


@dataclass(frozen=True, slots=True)
class ObjectStore:
    root: Path  # <store>/objects
    # shard name -> the object names listed there (once) and added since by this object
    _listed: dict[str, set[str]] = field(default_factory=dict, compare=False, repr=False)

    def path(self, digest: str, mode: int) -> str:
        return f"{self.root}/{digest[:2]}/{digest}.{mode:o}"

    def _names(self, shard: str) -> set[str]:
        names = self._listed.get(shard)
        if names is None:
            try:
                names = set(os.listdir(f"{self.root}/{shard}"))  # noqa: PTH208 (names: fast)
            except OSError:  # no shard yet (or unreadable: every object then looks absent)
                names = set()
            self._listed[shard] = names
        return names

    def usable(self, digest: str, mode: int, size: int) -> os.stat_result | None:
        """The object's status if it exists and looks untouched (see the module's docstring)."""
        if f"{digest}.{mode:o}" not in self._names(digest[:2]):
            return None
        try:
            st = os.lstat(self.path(digest, mode))
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode \
                or st.st_size != size or st.st_mtime_ns != STAMP * 10**9:
            return None
        return st

    def link_into(self, digest: str, mode: int, size: int, dest: str) -> os.stat_result | None:
        """Hard-link the object as ``dest`` (which must not exist); its status, or None when
        there is no usable object (or the file system refuses one more link)."""
        st = self.usable(digest, mode, size)
        if st is None:
            return None
        try:
            os.link(self.path(digest, mode), dest)
        except OSError as exc:
            if exc.errno in (errno.EMLINK, errno.ENOENT, errno.EXDEV, errno.EPERM):
                return None
            raise
        return st

    def adopt(self, fd: int, written: str, digest: str, mode: int) -> None:
        """Make the file just written (``fd`` open on ``written``) the object for its key: its
        mtime set to :data:`STAMP`, linked under the object's name, replacing an unusable one."""
        os.utime(fd, ns=(STAMP * 10**9, STAMP * 10**9))
        path = self.claim(digest, mode)
        try:
            os.link(written, path)
        except OSError as exc:
            if exc.errno is None:  # not the system's (no errno to settle by)
                raise
            self.settle(written, digest, mode, os.fstat(fd).st_size, exc.errno)

    def claim(self, digest: str, mode: int) -> str:
        """The object's path for a file about to be linked there (by :meth:`adopt` or the
        batch writer); its name is this store's from now on (:meth:`usable` looks at it)."""
        self._names(digest[:2]).add(f"{digest}.{mode:o}")
        return self.path(digest, mode)

    def settle(self, written: str, digest: str, mode: int, size: int, error: int) -> None:
        """``link(written, object)`` failed with ``error`` (an errno), ``written`` stamped and
        ``size`` bytes long: no shard yet (made, linked again), an object already there (kept
        if usable, else replaced by ``written``), a file system that refuses the link (the entry
        keeps its own copy); anything else is raised."""
        path = self.path(digest, mode)
        if error == errno.ENOENT:
            Path(path).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(written, path)
            return
        if error in (errno.EMLINK, errno.EXDEV, errno.EPERM):
            return  # the entry keeps its own copy
        if error != errno.EEXIST:
            raise OSError(error, os.strerror(error), path)
        if self.usable(digest, mode, size) is None:  # damaged: the new copy replaces it
            spare = f"{path}.{secrets.token_hex(4)}.new"
            os.link(written, spare)
            with contextlib.suppress(FileNotFoundError):  # gc took the spare: no object
                Path(spare).replace(path)


def orphans(root: Path) -> list[Path]:
    """Objects no entry links any more (link count 1), and leftovers of interrupted renames."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    with os.scandir(root) as shards:
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            with os.scandir(shard.path) as objects:
                for entry in objects:
                    st = entry.stat(follow_symlinks=False)
                    if st.st_nlink <= 1 or entry.name.endswith(".new"):
                        found.append(Path(entry.path))
    return found
