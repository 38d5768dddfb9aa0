"""builder.net with local sources (file:// URLs and paths); HTTP is exercised in integration."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from builder.errors import HashMismatchError
from builder.net import NetworkError, Progress, content_length, fetch_to, local_path, read_text


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "src dir" / "payload.bin"
    path.parent.mkdir()
    path.write_bytes(b"x" * 3_000_000)
    return path


def test_local_path_kinds(tmp_path: Path) -> None:
    assert local_path(str(tmp_path / "a")) == tmp_path / "a"
    assert local_path("file:///srv/a%20b/c") == Path("/srv/a b/c")
    assert local_path("https://example.org/x") is None
    with pytest.raises(NetworkError, match="file URL with a host"):
        local_path("file://server/share/x")


@pytest.mark.parametrize("as_url", [False, True])
def test_fetch_to_verifies_and_returns_sha(payload: Path, tmp_path: Path, as_url: bool) -> None:
    source = payload.as_uri() if as_url else str(payload)
    expected = hashlib.sha256(payload.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "payload.bin"
    assert fetch_to(source, dest, expected_sha256=expected.upper(), progress=False,
                    what="payload") == expected
    assert dest.read_bytes() == payload.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["payload.bin"]


def test_fetch_to_mismatch_leaves_nothing(payload: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "payload.bin"
    with pytest.raises(HashMismatchError) as info:
        fetch_to(str(payload), dest, expected_sha256="0" * 64, progress=False, what="payload")
    assert info.value.expected == "0" * 64
    assert info.value.actual == hashlib.sha256(payload.read_bytes()).hexdigest()
    assert str(payload) in str(info.value)
    assert list(dest.parent.iterdir()) == []


def test_fetch_to_missing_source(tmp_path: Path) -> None:
    with pytest.raises(NetworkError) as info:
        fetch_to(str(tmp_path / "nope"), tmp_path / "d", expected_sha256=None, progress=False,
                 what="x")
    assert info.value.missing
    assert info.value.where == str(tmp_path / "nope")
    assert not (tmp_path / "d").exists()


def test_read_text_and_content_length(tmp_path: Path) -> None:
    path = tmp_path / "SHA256SUMS"
    path.write_text("hello\n")
    assert read_text(path.as_uri()) == "hello\n"
    assert content_length(str(path)) == 6
    assert content_length(str(tmp_path / "missing")) is None


def test_progress_is_silent_unless_enabled() -> None:
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, enabled in ((quiet, False), (loud, True)):
        bar = Progress(what="file", total=4 << 20, enabled=enabled, stream=stream, interval=0.0)
        bar.update(1 << 20)
        bar.update(3 << 20)
        bar.finish()
    assert quiet.getvalue() == ""
    lines = loud.getvalue().split("\r")
    assert lines[-1] == "file [########################] 4.0/4.0 MiB 100%\n"
    assert "25%" in lines[1]


def test_progress_is_throttled() -> None:
    stream = io.StringIO()
    bar = Progress(what="f", total=None, enabled=True, stream=stream, interval=3600.0)
    for _ in range(100):
        bar.update(1)
    assert stream.getvalue().count("\r") == 1


def test_fetch_to_cuts_off_a_source_larger_than_promised(tmp_path: Path) -> None:
    from builder.net import NetworkError, fetch_to

    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (3 << 20))
    dest = tmp_path / "out" / "big.bin"
    with pytest.raises(NetworkError, match="more than the 1048576 bytes expected"):
        fetch_to(str(source), dest, expected_sha256=None, progress=False, what="big",
                 max_bytes=1 << 20)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []
    assert len(fetch_to(str(source), dest, expected_sha256=None, progress=False, what="big",
                        max_bytes=3 << 20)) == 64
