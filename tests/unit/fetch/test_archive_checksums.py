"""Archives are read to their end, so the compression's own checksums are checked: tar stops at
its end-of-archive blocks, before the gzip trailer (CRC32, length) or zstd's frame checksum."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest
import zstandard
from factories import fake_pbs_archive

from builder.cli.main import main
from builder.errors import BuilderError
from builder.fetch.interpreter import extract_interpreter, inspect_archive

ROOT = Path(__file__).resolve().parents[3]


def _flip(path: Path, offset_from_end: int) -> Path:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("offset", "expected"), [
    (8, "CRC check failed"),  # the trailer's CRC32
    (4, "Incorrect length of data produced"),  # the trailer's ISIZE
])
def test_a_gzip_archive_with_a_wrong_trailer_is_refused(tmp_path: Path, offset: int,
                                                        expected: str) -> None:
    archive = _flip(fake_pbs_archive(tmp_path), offset)
    with pytest.raises(BuilderError) as info:
        inspect_archive(archive)
    assert info.value.what.startswith("cannot read archive: ") and expected in info.value.what
    assert info.value.where == str(archive)
    with pytest.raises(BuilderError, match=expected):
        extract_interpreter(archive, tmp_path / "dest")
    assert not (tmp_path / "dest" / "python").exists()


def test_a_truncated_gzip_trailer_is_refused(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path)
    archive.write_bytes(archive.read_bytes()[:-8])
    with pytest.raises(BuilderError, match="cannot read archive: "):
        inspect_archive(archive)


def test_a_zstd_archive_with_a_wrong_frame_checksum_is_refused(tmp_path: Path) -> None:
    tree = fake_pbs_archive(tmp_path / "gz")
    with tarfile.open(tree) as tar:  # the same members, re-compressed with a checksum
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as out:
            for member in tar:
                out.addfile(member, tar.extractfile(member) if member.isreg() else None)
    archive = tmp_path / "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.zst"
    archive.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(buf.getvalue()))
    assert inspect_archive(archive).python_version == "3.11.7"  # intact: fine
    _flip(archive, 1)  # the frame's content checksum
    with pytest.raises(BuilderError, match=r"cannot read archive: .*checksum"):
        inspect_archive(archive)
    with pytest.raises(BuilderError, match="checksum"):
        extract_interpreter(archive, tmp_path / "dest")


def test_cli_a_corrupt_crc_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    shutil.copytree(ROOT / "lockfiles", tmp_path / "lockfiles")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(tmp_path / "cache"))
    archive = _flip(fake_pbs_archive(tmp_path / "in"), 8)
    assert main(["build", "recipes/tiny.toml", "--python-from", str(archive),
                 "--out", str(tmp_path / "dist")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {archive}: cannot read archive: CRC check failed")
    assert "hint: the file is damaged or truncated" in err and "Traceback" not in err
    assert not (tmp_path / "dist").exists()
