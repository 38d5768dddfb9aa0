"""Deterministic ``.tar.gz`` of a directory tree: equal trees give identical bytes."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from pathlib import Path

from builder.errors import BuilderError
from builder.fsutil import atomic_output, sha256_file


def sorted_entries(root: Path, top: str) -> list[str]:
    """Every path under ``root/top`` (``top`` included), posix, parents before children."""
    found = [top]
    for dirpath, dirnames, filenames in os.walk(root / top):
        rel = Path(dirpath).relative_to(root).as_posix()
        found += [f"{rel}/{name}" for name in dirnames + filenames]
    return sorted(found)


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
            for arcname in sorted_entries(root, top):
                path = root / arcname
                info = normalized_tarinfo(path, arcname, mtime=mtime)
                if info.isreg():
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
        return sha256_file(tmp)
