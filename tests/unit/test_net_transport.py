"""The one transport port and its real implementation, on local sources (no server)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder.net import Deadlines, NetTransport, NetworkError, Transport


def test_net_transport_serves_every_method_of_the_port(tmp_path: Path) -> None:
    source = tmp_path / "SHA256SUMS"
    source.write_text("abc  file\n")
    transport: Transport = NetTransport(Deadlines(connect=5, read=5))
    assert transport.read_text(str(source)) == "abc  file\n"
    assert transport.read_bytes(source.as_uri(), limit=100) == b"abc  file\n"
    assert transport.content_length(str(source)) == 10
    digest = transport.fetch_to(str(source), tmp_path / "copy", expected_sha256=None,
                                progress=False, what="sums", max_bytes=100)
    assert digest == hashlib.sha256(b"abc  file\n").hexdigest()
    assert (tmp_path / "copy").read_bytes() == b"abc  file\n"


def test_net_transport_limits_hold(tmp_path: Path) -> None:
    source = tmp_path / "big"
    source.write_bytes(b"x" * 64)
    transport = NetTransport()
    with pytest.raises(NetworkError, match="larger than the 10 bytes expected"):
        transport.read_bytes(str(source), limit=10)
    with pytest.raises(NetworkError):
        transport.fetch_to(str(source), tmp_path / "copy", expected_sha256=None,
                           progress=False, what="big", max_bytes=10)
    assert not (tmp_path / "copy").exists()
