"""Downloads are bounded in time: a stalled, trickling or endless source fails, and an agent
install from one releases the entry's lock and leaves nothing behind. Against a loopback server
that sends a few bytes at a time (bounded: it stops itself)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from builder import net
from builder.agent import InstallOptions, NetAgentTransport, Store, install
from builder.agent.manifest_check import Expectation
from builder.agent.source import ResolvedSource
from builder.net import Deadlines, NetworkError

LIFETIME = 10.0  # seconds: the server gives up by itself


@contextmanager
def trickle(*, headers: bool = True, piece: bytes = b"x" * 64, every: float = 0.05,
            length: int = 1 << 20) -> Iterator[str]:
    """http://127.0.0.1:PORT/x.tar.zst announcing ``length`` bytes, sending ``piece`` every
    ``every`` seconds (``headers=False``: not even the response line)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(LIFETIME)
    stop = threading.Event()

    def serve() -> None:
        ends = time.monotonic() + LIFETIME
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            if headers:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
            sent = 0
            while not stop.is_set() and time.monotonic() < ends and sent < length:
                if headers and piece:
                    try:
                        conn.sendall(piece)
                    except OSError:
                        return
                    sent += len(piece)
                stop.wait(every)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/x.tar.zst"
    finally:
        stop.set()
        server.close()
        thread.join(timeout=LIFETIME)


def timed_failure(url: str, deadlines: Deadlines, tmp_path: Path) -> tuple[NetworkError, float]:
    start = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        net.fetch_to(url, tmp_path / "out", expected_sha256=None, progress=False, what="x",
                     deadlines=deadlines)
    assert not (tmp_path / "out").exists()
    return caught.value, time.monotonic() - start


def test_a_trickling_source_fails_on_the_minimum_rate(tmp_path: Path) -> None:
    with trickle() as url:  # 64 bytes every 50 ms: about 1.3 KB/s
        error, took = timed_failure(url, Deadlines(min_rate=10_000, rate_window=0.3), tmp_path)
    assert "too slow" in error.what and "below the minimum of 10000 bytes/s" in error.what
    assert took < 3


def test_a_source_fails_on_the_overall_deadline(tmp_path: Path) -> None:
    with trickle() as url:
        error, took = timed_failure(url, Deadlines(total=0.4, min_rate=0), tmp_path)
    assert "overall deadline of 0.4 s" in error.what
    assert took < 3


def test_a_stalled_body_fails_on_the_read_timeout(tmp_path: Path) -> None:
    with trickle(piece=b"") as url:
        error, took = timed_failure(url, Deadlines(read=0.3, min_rate=0), tmp_path)
    assert "timed out" in error.what
    assert took < 3


def test_a_silent_server_fails_on_the_connect_timeout(tmp_path: Path) -> None:
    with trickle(headers=False) as url:
        error, took = timed_failure(url, Deadlines(connect=0.3, min_rate=0), tmp_path)
    assert "timed out" in error.what
    assert took < 3


def test_a_fast_source_passes_the_same_limits(tmp_path: Path) -> None:
    with trickle(piece=b"y" * 65536, every=0.001, length=1 << 20) as url:
        net.fetch_to(url, tmp_path / "out", expected_sha256=None, progress=False, what="x",
                     deadlines=Deadlines(min_rate=100_000, rate_window=0.05, total=5))
    assert (tmp_path / "out").read_bytes() == b"y" * (1 << 20)


def test_defaults_give_up_on_a_trickle_within_minutes() -> None:
    d = Deadlines()
    assert (d.connect, d.read, d.total, d.min_rate, d.rate_window) == (30, 30, 3600, 10240, 60)
    # 64 bytes every 2 s is far below the minimum rate: it fails at the first window's end
    assert d.min_rate > 64 / 2 and d.rate_window <= 120


def test_agent_install_from_a_trickle_fails_and_releases_the_lock(tmp_path: Path) -> None:
    store = Store(root=tmp_path / "store", lock_timeout=1)
    sha = "ab" * 32
    transport = NetAgentTransport(Deadlines(min_rate=10_000, rate_window=0.3))
    with trickle() as url:
        source = ResolvedSource(location=url, expect=Expectation(sha256=sha,
                                                                 vouched_by="--sha256"))
        with pytest.raises(NetworkError, match="too slow"):
            install(source, store, transport=transport, options=InstallOptions())
    held = store.try_lock(sha)
    assert held is not None  # released on failure
    with held:
        pass
    assert list(store.tmp_dir.iterdir()) == [] and list(store.entries_dir.iterdir()) == []


def test_registry_bodies_are_bounded_the_same_way() -> None:
    from builder.oci.http import HttpRequest, UrllibHttp

    http = UrllibHttp(deadlines=Deadlines(min_rate=10_000, rate_window=0.3))
    with trickle() as url:
        response = http.send(HttpRequest(method="GET", url=url))
        start = time.monotonic()
        with pytest.raises(NetworkError, match="too slow"):
            while response.read(1 << 20):
                pass
        response.close()
    assert time.monotonic() - start < 3
