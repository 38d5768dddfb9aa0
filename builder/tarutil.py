"""Normalised tar members: the one place that decides what a reproducible entry looks like."""

from __future__ import annotations

import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path

from builder.errors import BuilderError


def normalized_tarinfo(path: Path, arcname: str, *, mtime: int) -> tarfile.TarInfo:
    st = path.lstat()
    info = tarfile.TarInfo(arcname)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = str(path.readlink())
        info.mode = 0o777
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    else:
        raise BuilderError("cannot archive a special file", where=str(path))
    return info


def add_normalized(tar: tarfile.TarFile, root: Path, arcnames: Iterable[str], *,
                   mtime: int) -> int:
    """Add ``root/<arcname>`` for each name, normalised; returns the number of entries."""
    count = 0
    for arcname in arcnames:
        path = root / arcname
        info = normalized_tarinfo(path, arcname, mtime=mtime)
        if info.isreg():
            with path.open("rb") as fh:
                tar.addfile(info, fh)
        else:
            tar.addfile(info)
        count += 1
    return count
