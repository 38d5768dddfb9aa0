"""Deterministic archives: equal trees give identical bytes."""

from __future__ import annotations

import os
import random
import tarfile
from pathlib import Path

from builder.cpython.tarball import sorted_entries, write_tar_gz

FILES = {
    "python/bin/python3.11": (b"#!/bin/sh\n", 0o700),
    "python/lib/python3.11/os.py": (b"# os\n", 0o600),
    "python/lib/python3.11/json/__init__.py": (b"", 0o664),
    "python/lib-x/a": (b"a", 0o644),
    "python/PYTHON.json": (b"{}\n", 0o640),
}


def _build(root: Path, order: list[str], umask: int, mtime: int) -> None:
    old = os.umask(umask)
    try:
        for name in order:
            data, mode = FILES[name]
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
            os.utime(path, (mtime, mtime))
        (root / "python/bin/python3").symlink_to("python3.11")
    finally:
        os.umask(old)


def test_same_tree_same_bytes(tmp_path: Path) -> None:
    names = sorted(FILES)
    shuffled = names[:]
    random.Random(4).shuffle(shuffled)
    _build(tmp_path / "one", names, 0o022, 1_000_000)
    _build(tmp_path / "two", shuffled, 0o077, 2_000_000)
    a = write_tar_gz(tmp_path / "one", "python", tmp_path / "a.tar.gz", mtime=1700000000)
    b = write_tar_gz(tmp_path / "two", "python", tmp_path / "b.tar.gz", mtime=1700000000)
    assert a == b
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    head = (tmp_path / "a.tar.gz").read_bytes()[:10]
    assert head[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert head[3] & 0x08 == 0  # no FNAME
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted_entries(tmp_path / "one", "python")
    assert [m.name for m in members][:3] == ["python", "python/PYTHON.json", "python/bin"]
    modes = {m.name: (m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members}
    assert modes["python/bin/python3.11"] == (0o755, 1700000000, 0, 0, "", "")
    assert modes["python/lib/python3.11/os.py"][0] == 0o644
    assert modes["python/lib"][0] == 0o755
    link = next(m for m in members if m.name == "python/bin/python3")
    assert link.issym() and link.linkname == "python3.11"
