"""The HTTP port the registry client talks through, and its urllib implementation.

Responses of every status come back as values (a registry answers 401, 404 and 202 as part of
the protocol); only an unreachable server raises, as :class:`~builder.net.NetworkError`.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, cast

from builder.net import DEFAULT_TIMEOUT, USER_AGENT, Deadlines, NetworkError, PacedReader


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | Path | None = None  # a Path is streamed from the file


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    stream: IO[bytes]

    def read(self, limit: int = 1 << 20) -> bytes:
        return self.stream.read(limit)

    def close(self) -> None:
        self.stream.close()


class Http(Protocol):
    def send(self, request: HttpRequest) -> HttpResponse: ...


@dataclass(frozen=True, slots=True)
class UrllibHttp:
    timeout: float = DEFAULT_TIMEOUT  # to connect and get the response
    deadlines: Deadlines | None = None  # bounds response bodies (read timeout, total, rate)

    def send(self, request: HttpRequest) -> HttpResponse:
        headers = {"User-Agent": USER_AGENT, **dict(request.headers)}
        if isinstance(request.body, Path):
            try:
                fh = request.body.open("rb")
            except OSError as exc:
                raise NetworkError(f"cannot read: {exc.strerror or exc}",
                                   where=str(request.body)) from exc
            with fh:
                headers["Content-Length"] = str(request.body.stat().st_size)
                return self._open(request, fh, headers)
        if request.body is not None:
            headers["Content-Length"] = str(len(request.body))
        return self._open(request, request.body, headers)

    def _open(self, request: HttpRequest, data: bytes | IO[bytes] | None,
              headers: dict[str, str]) -> HttpResponse:
        # the registry client builds only http(s) URLs
        req = urllib.request.Request(request.url, data=data, headers=headers,  # noqa: S310
                                     method=request.method)
        try:
            response = urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            return HttpResponse(status=exc.code, headers=_lower(exc.headers.items()), stream=exc)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise _unreachable(request.url, exc) from exc
        stream: IO[bytes] = response
        if self.deadlines is not None:
            stream = cast(IO[bytes], PacedReader(response, self.deadlines, request.url))
        return HttpResponse(status=response.status, headers=_lower(response.headers.items()),
                            stream=stream)


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def _unreachable(url: str, exc: BaseException) -> NetworkError:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLError):
        return NetworkError(f"TLS failed: {reason}", where=url,
                            hint="if the registry serves plain HTTP (a local test registry), "
                            "pass --plain-http")
    if isinstance(reason, TimeoutError):
        return NetworkError("timed out", where=url)
    return NetworkError(f"cannot reach the registry: {reason}", where=url)
