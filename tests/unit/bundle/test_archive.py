from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import pytest
import zstandard

from builder.bundle import archive as archive_module
from builder.bundle.archive import DEFAULT_MTIME, read_member, write_archive
from builder.fsutil import sha256_file


def make_tree(root: Path, *, umask: int, order_seed: int) -> None:
    """The same logical tree, written with another umask and creation order."""
    old = os.umask(umask)
    try:
        files = {
            "app/bin/tool": (b"#!/bin/sh\necho hi\n", True),
            "app/python/lib/mod.py": (b"x = 1\n", False),
            "app/python/lib/pkg/__init__.py": (b"", False),
            "app/share/data.txt": (b"data" * 1000, False),
            "manifest.json": (b"{}\n", False),
        }
        items = list(files.items())
        random.Random(order_seed).shuffle(items)
        for rel, (data, executable) in items:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if executable:
                path.chmod(path.stat().st_mode | 0o111)
        (root / "app/python/bin").mkdir(parents=True, exist_ok=True)
        (root / "app/python/bin/python3").symlink_to("python3.11")
        os.utime(root / "app/share/data.txt", (order_seed, order_seed))
    finally:
        os.umask(old)


def members(path: Path) -> list[tarfile.TarInfo]:
    with path.open("rb") as raw:
        data = zstandard.ZstdDecompressor().stream_reader(raw).read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmembers()


def test_same_tree_same_bytes_whatever_umask_order_and_mtime(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a, umask=0o022, order_seed=1)
    make_tree(b, umask=0o077, order_seed=2)
    real_walk = os.walk

    def shuffled_walk(top: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for directory, dirs, files in real_walk(top, *args, **kwargs):  # type: ignore[call-overload]
            random.shuffle(dirs)
            random.shuffle(files)
            yield directory, dirs, files

    monkeypatch.setattr(archive_module.os, "walk", shuffled_walk)
    write_archive(a, tmp_path / "a.tar.zst")
    write_archive(b, tmp_path / "b.tar.zst")
    assert sha256_file(tmp_path / "a.tar.zst") == sha256_file(tmp_path / "b.tar.zst")


def test_members_are_normalised_and_manifest_first(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", umask=0o077, order_seed=3)
    write_archive(tmp_path / "t", tmp_path / "x.tar.zst", mtime=1234)
    got = members(tmp_path / "x.tar.zst")
    assert got[0].name == "manifest.json"
    names = [m.name for m in got[1:]]
    assert names == sorted(names)
    for member in got:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 1234
        if member.isdir():
            assert member.mode == 0o755
        elif member.isfile():
            assert member.mode in (0o644, 0o755)
    by_name = {m.name: m for m in got}
    assert by_name["app/bin/tool"].mode == 0o755
    assert by_name["app/python/lib/mod.py"].mode == 0o644
    assert by_name["app/python/bin/python3"].issym()
    assert by_name["app/python/bin/python3"].linkname == "python3.11"


def test_default_mtime_needs_no_environment(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", umask=0o022, order_seed=4)
    write_archive(tmp_path / "t", tmp_path / "x.tar.zst")
    assert {m.mtime for m in members(tmp_path / "x.tar.zst")} == {DEFAULT_MTIME}


def test_read_member_reads_the_manifest(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", umask=0o022, order_seed=5)
    write_archive(tmp_path / "t", tmp_path / "x.tar.zst")
    assert read_member(tmp_path / "x.tar.zst", "manifest.json") == b"{}\n"
    assert read_member(tmp_path / "x.tar.zst", "nope") is None


def test_special_files_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(Exception, match="cannot archive a special file"):
        write_archive(root, tmp_path / "x.tar.zst")
