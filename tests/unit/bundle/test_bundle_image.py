"""The mountable image of a bundle: a pure function of the archive, a clear error without
the mkfs tool."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from agent_factories import make_bundle
from image_factories import MTIME, need_mksquashfs

from builder.bundle.image import (
    ImageKind,
    MkfsTool,
    find_tool,
    image_path,
    mkfs_command,
    mkfs_environment,
    parse_tool_version,
    unpack_archive,
    write_image,
)
from builder.errors import BuilderError


def test_a_missing_tool_is_a_clear_error() -> None:
    with pytest.raises(BuilderError) as caught:
        find_tool(ImageKind.SQUASHFS, which=lambda _name: None)
    assert caught.value.what == "--image squashfs needs mksquashfs, which is not installed"
    assert "apt-get install squashfs-tools" in str(caught.value.hint)
    assert "build without --image" in str(caught.value.hint)


@pytest.mark.parametrize(("output", "version"), [
    ("mksquashfs version 4.5.1 (2022/03/17)\ncopyright ...", "mksquashfs 4.5.1"),
    ("mksquashfs version 4.6.1 (2023/03/25)", "mksquashfs 4.6.1"),
])
def test_tool_version(output: str, version: str) -> None:
    assert parse_tool_version("mksquashfs", output, where="x") == version


@pytest.mark.parametrize("output", ["", "squashfs-tools 4.5", "mksquashfs 4.5.1"])
def test_an_unknown_version_banner_is_refused(output: str) -> None:
    with pytest.raises(BuilderError, match="cannot tell the version of mksquashfs"):
        parse_tool_version("mksquashfs", output, where="x")


def test_the_command_fixes_every_time_owner_and_leaves_out_xattrs_and_hard_links() -> None:
    tool = MkfsTool(path="/usr/bin/mksquashfs", version="mksquashfs 4.5.1")
    argv = mkfs_command(ImageKind.SQUASHFS, tool, Path("/r"), Path("/o.squashfs"), mtime=42)
    assert argv[:3] == ["/usr/bin/mksquashfs", "/r", "/o.squashfs"]
    joined = " ".join(argv)
    for flag in ("-noappend", "-all-root", "-no-xattrs", "-no-hardlinks", "-mkfs-time 42",
                 "-all-time 42", "-comp lz4 -Xhc"):
        assert flag in joined
    assert "-not-reproducible" not in joined
    # mksquashfs refuses SOURCE_DATE_EPOCH beside -all-time
    assert mkfs_environment({"SOURCE_DATE_EPOCH": "1", "PATH": "/bin"}) == {"PATH": "/bin"}


def test_image_path_sits_beside_the_archive() -> None:
    assert image_path(Path("/d/demo-1.0-x-abc.tar.zst"), ImageKind.SQUASHFS) == \
        Path("/d/demo-1.0-x-abc.squashfs")


def test_the_image_is_a_pure_function_of_the_archive(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two images of one archive, from two work directories, another umask and a
    SOURCE_DATE_EPOCH in the environment: the same bytes; files, modes, links and times as
    the archive holds them, every owner root."""
    need_mksquashfs()
    bundle = make_bundle(tmp_path / "dist", extra_files=30)
    (tmp_path / "w1").mkdir()
    first = write_image(bundle.archive, tmp_path / "one.squashfs", kind=ImageKind.SQUASHFS,
                        mtime=MTIME, work=tmp_path / "w1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    old = os.umask(0o077)
    try:
        (tmp_path / "other" / "w2").mkdir(parents=True)
        second = write_image(bundle.archive, tmp_path / "two.squashfs",
                             kind=ImageKind.SQUASHFS, mtime=MTIME, work=tmp_path / "other" / "w2")
    finally:
        os.umask(old)
    assert first.sha256 == second.sha256 and first.size == second.size
    assert (tmp_path / "one.squashfs").read_bytes() == (tmp_path / "two.squashfs").read_bytes()
    assert first.tool.startswith("mksquashfs ")
    listing = subprocess.run(["unsquashfs", "-lln", str(tmp_path / "two.squashfs")],
                             capture_output=True, text=True, check=True).stdout
    rows = {line.split()[-1] if "->" not in line else line.split()[-3]: line.split()
            for line in listing.splitlines() if line.startswith(("-", "d", "l"))}
    assert rows["squashfs-root/app/bin/run"][0:2] == ["-rwxr-xr-x", "0/0"]
    assert rows["squashfs-root/manifest.json"][0:2] == ["-rw-r--r--", "0/0"]
    assert rows["squashfs-root/app/bin/run-link"][0] == "lrwxrwxrwx"
    assert all(row[1] == "0/0" and row[3:5] == ["1980-01-01", "00:00"]
               for row in rows.values()), listing
    assert "squashfs-root/app/.builder-record.jsonl" in rows


def test_another_mtime_gives_another_image(tmp_path: Path) -> None:
    need_mksquashfs()
    bundle = make_bundle(tmp_path / "dist")
    shas = []
    for i, mtime in enumerate((MTIME, MTIME + 1)):
        (tmp_path / f"w{i}").mkdir()
        shas.append(write_image(bundle.archive, tmp_path / f"{i}.squashfs",
                                kind=ImageKind.SQUASHFS, mtime=mtime,
                                work=tmp_path / f"w{i}").sha256)
    assert shas[0] != shas[1]


def test_an_archive_with_a_wrong_frame_checksum_is_not_unpacked_for_an_image(
        tmp_path: Path) -> None:
    """The tar members all read; zstd's frame checksum (the last 4 bytes) is wrong."""
    bundle = make_bundle(tmp_path / "dist", extra_files=3)
    data = bytearray(bundle.archive.read_bytes())
    data[-1] ^= 0xFF
    bundle.archive.write_bytes(bytes(data))
    with pytest.raises(BuilderError) as info:
        unpack_archive(bundle.archive, tmp_path / "tree")
    assert info.value.what.startswith("cannot unpack the archive for its image: ")
    assert "checksum" in info.value.what
