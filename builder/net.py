"""Generic transfer: http(s) URLs, file:// URLs and local paths, with hashing while streaming.

The one place that talks to the network. Foreign errors (urllib, http.client, sockets, the file
system) are wrapped once here into :class:`NetworkError` with the source in ``where``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO

from builder import __version__
from builder.errors import BuilderError, HashMismatchError
from builder.fsutil import CHUNK, atomic_output

USER_AGENT = f"builder/{__version__}"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadlines:
    """How long a transfer may take, so that no source holds a download (and the locks held
    meanwhile) for as long as it likes. The defaults fail a stalled source after ``read``
    seconds and a trickling one after ``rate_window`` seconds."""

    connect: float = DEFAULT_TIMEOUT  # to connect and receive the response headers
    read: float = DEFAULT_TIMEOUT  # the longest silence between two reads of the body
    total: float = 3600.0  # the whole transfer, whatever its rate
    min_rate: int = 10 << 10  # bytes/s, averaged over each rate_window
    rate_window: float = 60.0

    @classmethod
    def from_timeout(cls, timeout: float) -> Deadlines:
        return cls(connect=timeout, read=timeout)
_REMOTE_SCHEMES = ("http", "https")


class NetworkError(BuilderError):
    """A source could not be read: unreachable host, HTTP error, missing file, cut transfer.

    ``missing`` is True when the source answered that the thing does not exist (HTTP 404/410, no
    such local file), as opposed to the source itself being unreachable.
    """

    def __init__(
        self, what: str, *, where: str, hint: str | None = None, missing: bool = False
    ) -> None:
        self.missing = missing
        super().__init__(what, where=where, hint=hint)


def is_remote(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in _REMOTE_SCHEMES


def is_url(source: str) -> bool:
    """True for anything with a URL scheme we read (http, https, file)."""
    return urllib.parse.urlsplit(source).scheme in (*_REMOTE_SCHEMES, "file")


def local_path(source: str) -> Path | None:
    """The file a ``file://`` URL or plain path names; None for http(s) sources."""
    parts = urllib.parse.urlsplit(source)
    if parts.scheme in _REMOTE_SCHEMES:
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise NetworkError(
                f"file URL with a host ({parts.netloc!r}) is not supported", where=source
            )
        from urllib.request import url2pathname

        return Path(url2pathname(parts.path))
    return Path(source)


@dataclass(frozen=True, slots=True)
class _Opened:
    stream: BinaryIO
    length: int | None  # bytes announced by the source, when known
    remote: bool = False
    started: float = 0.0  # time.monotonic() before connecting


def _http_error(source: str, exc: BaseException) -> NetworkError:
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        exc.close()  # it holds the response (and its socket)
        return NetworkError(
            f"HTTP {exc.code} {exc.reason}", where=source, missing=exc.code in (404, 410)
        )
    if isinstance(exc, urllib.error.URLError):
        return NetworkError(f"cannot reach server: {exc.reason}", where=source)
    if isinstance(exc, TimeoutError):
        return NetworkError("timed out", where=source)
    return NetworkError(f"transfer failed: {exc}", where=source)


@contextlib.contextmanager
def _open(source: str, *, deadlines: Deadlines) -> Iterator[_Opened]:
    started = time.monotonic()
    path = local_path(source)
    if path is not None:
        try:
            fh = path.open("rb")
        except FileNotFoundError as exc:
            raise NetworkError("no such file", where=source, missing=True) from exc
        except OSError as exc:
            raise NetworkError(f"cannot read: {exc.strerror or exc}", where=source) from exc
        with fh:
            yield _Opened(fh, os.fstat(fh.fileno()).st_size)
        return
    # scheme checked by local_path: only http(s) reaches urllib
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(source, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=deadlines.connect)  # noqa: S310
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _http_error(source, exc) from exc
    with response:
        _set_read_timeout(response, deadlines.read)
        header = response.headers.get("Content-Length")
        length = int(header) if header and header.isdigit() else None
        yield _Opened(response, length, remote=True, started=started)


def _set_read_timeout(response: object, seconds: float) -> None:
    """The body's socket gets the read timeout (urllib uses one timeout for everything)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(seconds)


@dataclass(slots=True)
class _Pace:
    """The overall deadline and the minimum rate, checked after every read."""

    deadlines: Deadlines
    started: float
    window_start: float
    window_bytes: int = 0

    def check(self, count: int, source: str) -> None:
        now = time.monotonic()
        d = self.deadlines
        if now - self.started > d.total:
            raise NetworkError(f"the transfer took longer than the overall deadline of "
                               f"{d.total:g} s", where=source, hint=_PACE_HINT)
        self.window_bytes += count
        elapsed = now - self.window_start
        if elapsed >= d.rate_window:
            if self.window_bytes < d.min_rate * elapsed:
                raise NetworkError(
                    f"the source is too slow: {self.window_bytes} bytes in {elapsed:.1f} s, "
                    f"below the minimum of {d.min_rate} bytes/s", where=source, hint=_PACE_HINT)
            self.window_start, self.window_bytes = now, 0


_PACE_HINT = "try again or another mirror; the limits are configurable (see the README)"


class PacedReader:
    """A response body bounded by ``deadlines``: reads return what one read of the socket gives
    (a trickle is seen as it trickles), and the overall deadline and minimum rate are checked
    after each. For other HTTP clients than :func:`fetch_to` (the registry's)."""

    def __init__(self, stream: BinaryIO, deadlines: Deadlines, source: str) -> None:
        _set_read_timeout(stream, deadlines.read)
        self.stream = stream
        self._read = getattr(stream, "read1", None) or stream.read
        now = time.monotonic()
        self.pace = _Pace(deadlines, started=now, window_start=now)
        self.source = source

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._read(CHUNK if size is None or size < 0 else size)
        self.pace.check(len(data), self.source)
        return data

    def close(self) -> None:
        self.stream.close()


def _read_chunks(opened: _Opened, source: str,
                 deadlines: Deadlines | None = None) -> Iterator[bytes]:
    received = 0
    # read1: whatever one read of the socket gives, so a trickle is seen as it trickles
    read = getattr(opened.stream, "read1", None) if opened.remote else None
    read = read or opened.stream.read
    pace = None
    errors: tuple[type[BaseException], ...] = (OSError,)
    if opened.remote:
        import http.client

        errors = (http.client.HTTPException, OSError)
    if deadlines is not None and opened.remote:
        pace = _Pace(deadlines, started=opened.started, window_start=time.monotonic())
    try:
        while chunk := read(CHUNK):
            received += len(chunk)
            if pace is not None:
                pace.check(len(chunk), source)
            yield chunk
    except errors as exc:
        raise _http_error(source, exc) from exc
    if opened.length is not None and received != opened.length:
        raise NetworkError(
            f"transfer cut short: received {received} of {opened.length} bytes", where=source
        )


@dataclass(slots=True)
class Progress:
    """A throttled one-line progress bar (stdlib only); silent unless ``enabled``."""

    what: str
    total: int | None
    enabled: bool
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 0.1
    done: int = 0
    _last: float = float("-inf")

    def update(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._draw()

    def finish(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        mib = self.done / (1 << 20)
        if self.total:
            pct = min(100, self.done * 100 // self.total)
            width = 24
            filled = width * pct // 100
            bar = "#" * filled + "-" * (width - filled)
            text = f"{self.what} [{bar}] {mib:.1f}/{self.total / (1 << 20):.1f} MiB {pct:3d}%"
        else:
            text = f"{self.what} {mib:.1f} MiB"
        self.stream.write("\r" + text)
        self.stream.flush()


def fetch_to(
    source: str,
    dest: Path,
    *,
    expected_sha256: str | None,
    progress: bool,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int | None = None,
    deadlines: Deadlines | None = None,
) -> str:
    """Copy ``source`` to ``dest`` and return its sha256.

    The bytes go to a sibling temporary file, hashed on the way; ``dest`` appears (atomically)
    only when the hash matches ``expected_sha256`` (if given). A source sending more than
    ``max_bytes`` is cut off while streaming (a hostile server cannot fill the disk). On any
    failure nothing is left at ``dest``. ``deadlines`` (default: ``timeout`` to connect and
    between reads, and :class:`Deadlines`' overall deadline and minimum rate) bound the time.
    """
    try:
        return _fetch_to(source, dest, expected_sha256=expected_sha256, progress=progress,
                         what=what, deadlines=deadlines or Deadlines.from_timeout(timeout),
                         max_bytes=max_bytes)
    except OSError as exc:  # the local side: creating, writing or renaming under dest's folder
        raise BuilderError(f"cannot write: {exc.strerror or exc}", where=str(dest)) from exc


def _fetch_to(
    source: str,
    dest: Path,
    *,
    expected_sha256: str | None,
    progress: bool,
    what: str,
    deadlines: Deadlines,
    max_bytes: int | None,
) -> str:
    digest = hashlib.sha256()
    received = 0
    expected = expected_sha256.lower() if expected_sha256 else None
    with atomic_output(dest) as tmp, _open(source, deadlines=deadlines) as opened:
        bar = Progress(what=what, total=opened.length, enabled=progress)
        try:
            with tmp.open("wb") as out:
                for chunk in _read_chunks(opened, source, deadlines):
                    received += len(chunk)
                    if max_bytes is not None and received > max_bytes:
                        raise NetworkError(
                            f"{what}: the source sends more than the {max_bytes} bytes expected; "
                            "nothing was kept", where=source)
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        finally:
            bar.finish()
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise HashMismatchError(
                what=what,
                where=source,
                expected=expected,
                actual=actual,
                hint="the source does not hold the pinned bytes; if it is a mirror, refresh it "
                "from the original release; nothing was kept",
            )
    return actual


def read_bytes(source: str, *, timeout: float = DEFAULT_TIMEOUT, limit: int = 16 << 20,
               deadlines: Deadlines | None = None) -> bytes:
    """Read a small source whole (refuses more than ``limit`` bytes)."""
    parts: list[bytes] = []
    size = 0
    deadlines = deadlines or Deadlines.from_timeout(timeout)
    with _open(source, deadlines=deadlines) as opened:
        for chunk in _read_chunks(opened, source, deadlines):
            size += len(chunk)
            if size > limit:
                raise NetworkError(f"larger than the {limit} bytes expected", where=source)
            parts.append(chunk)
    return b"".join(parts)


def read_text(source: str, *, timeout: float = DEFAULT_TIMEOUT,
              deadlines: Deadlines | None = None) -> str:
    """Read a small UTF-8 text file (e.g. SHA256SUMS) from any supported source."""
    data = read_bytes(source, timeout=timeout, deadlines=deadlines)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NetworkError(f"not UTF-8 text: {exc}", where=source) from exc


def content_length(source: str, *, timeout: float = DEFAULT_TIMEOUT) -> int | None:
    """Size in bytes of a source (file size, or Content-Length of a HEAD); None when unknown.

    Never raises for an unreachable or missing source: the size is advisory.
    """
    path = local_path(source)
    if path is not None:
        try:
            return path.stat().st_size
        except OSError:
            return None
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (http(s) only, see local_path)
        source, headers={"User-Agent": USER_AGENT}, method="HEAD"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            header = response.headers.get("Content-Length")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        return None
    return int(header) if header and header.isdigit() else None


class Transport(Protocol):
    """The one transport port: what stages and the agent need from the outside world (a local
    path, ``file://`` or http(s) source). Locking reads SHA256SUMS and sizes, fetching and the
    agent download archives and read small sidecars; tests pass fakes of the methods they use.
    The real one is :class:`NetTransport`."""

    def read_text(self, source: str) -> str: ...

    def read_bytes(self, source: str, *, limit: int) -> bytes: ...

    def content_length(self, source: str) -> int | None: ...

    def fetch_to(self, source: str, dest: Path, *, expected_sha256: str | None, progress: bool,
                 what: str, max_bytes: int | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class NetTransport:
    """The real :class:`Transport`: this module, every transfer bounded by ``deadlines``."""

    deadlines: Deadlines = field(default_factory=Deadlines)

    def read_text(self, source: str) -> str:
        return read_text(source, deadlines=self.deadlines)

    def read_bytes(self, source: str, *, limit: int) -> bytes:
        return read_bytes(source, limit=limit, deadlines=self.deadlines)

    def content_length(self, source: str) -> int | None:
        return content_length(source, timeout=self.deadlines.connect)

    def fetch_to(self, source: str, dest: Path, *, expected_sha256: str | None, progress: bool,
                 what: str, max_bytes: int | None = None) -> str:
        return fetch_to(source, dest, expected_sha256=expected_sha256, progress=progress,
                        what=what, max_bytes=max_bytes, deadlines=self.deadlines)
