"""A small client of the registry HTTP API v2 (the OCI Distribution spec).

Only what pushing and pulling one image needs: blob HEAD, monolithic upload (POST, then PUT with
the digest), manifest PUT/GET and blob GET. Authentication: none, HTTP basic, or the bearer token
flow (anonymous or with basic credentials at the token endpoint) that Docker Hub, GHCR, Harbor
and distribution's token auth use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import BuilderError, HashMismatchError
from builder.fsutil import CHUNK, atomic_output
from builder.net import NetworkError
from builder.oci.http import Http, HttpRequest, HttpResponse
from builder.oci.model import MEDIA_INDEX, MEDIA_MANIFEST, digest_of

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(slots=True, kw_only=True)
class Registry:
    """One registry host; ``plain_http`` talks HTTP instead of HTTPS (explicit, never a fallback).
    """

    host: str
    plain_http: bool
    http: Http
    credentials: Credentials | None = None
    _authorization: str | None = field(default=None, init=False)

    @property
    def base(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}/v2/"

    def _url(self, repository: str, kind: str, reference: str) -> str:
        return f"{self.base}{urllib.parse.quote(repository)}/{kind}/{reference}"

    # -- requests with authentication ----------------------------------------------------------

    def _send(self, method: str, url: str, *, headers: tuple[tuple[str, str], ...] = (),
              body: bytes | Path | None = None) -> HttpResponse:
        """Send once; on a 401 challenge, authenticate and send once more."""
        response = self._send_once(method, url, headers=headers, body=body)
        if response.status == 401:
            challenge = response.headers.get("www-authenticate", "")
            response.close()
            self._authenticate(challenge, url)
            response = self._send_once(method, url, headers=headers, body=body)
        return response

    def _send_once(self, method: str, url: str, *, headers: tuple[tuple[str, str], ...],
                   body: bytes | Path | None) -> HttpResponse:
        if self._authorization is not None:
            headers = (*headers, ("Authorization", self._authorization))
        return self.http.send(HttpRequest(method=method, url=url, headers=headers, body=body))

    def _authenticate(self, challenge: str, url: str) -> None:
        scheme, _, rest = challenge.partition(" ")
        params = dict(_PARAM.findall(rest))
        if scheme.lower() == "basic":
            if self.credentials is None:
                raise _denied(url)
            self._authorization = self.credentials.basic()
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise NetworkError(f"unsupported authentication challenge {challenge!r}", where=url)
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        token_url = params["realm"] + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = (("Authorization", self.credentials.basic()),) if self.credentials else ()
        response = self.http.send(HttpRequest(method="GET", url=token_url, headers=headers))
        with contextlib.closing(response):
            if response.status != 200:
                raise _denied(url) if response.status in (401, 403) else _failure(
                    response, token_url, "token request")
            try:
                data = json.loads(response.read())
                token = data.get("token") or data.get("access_token")
            except (ValueError, AttributeError) as exc:
                raise NetworkError("the token endpoint answered no JSON token",
                                   where=token_url) from exc
        if not isinstance(token, str) or not token:
            raise NetworkError("the token endpoint answered no token", where=token_url)
        self._authorization = f"Bearer {token}"

    # -- operations -----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        url = self._url(repository, "blobs", digest)
        with contextlib.closing(self._send("HEAD", url)) as response:
            if response.status == 200:
                return True
            if response.status == 404:
                return False
            raise _failure(response, url, "blob check")

    def upload_blob(self, repository: str, digest: str, body: bytes | Path) -> None:
        """Monolithic upload: POST opens an upload session, PUT sends the bytes and the digest."""
        start = f"{self.base}{urllib.parse.quote(repository)}/blobs/uploads/"
        with contextlib.closing(self._send("POST", start, body=b"")) as response:
            if response.status != 202 or "location" not in response.headers:
                raise _failure(response, start, "upload start")
            location = urllib.parse.urljoin(start, response.headers["location"])
        separator = "&" if urllib.parse.urlsplit(location).query else "?"
        url = f"{location}{separator}digest={urllib.parse.quote(digest)}"
        headers = (("Content-Type", "application/octet-stream"),)
        with contextlib.closing(self._send("PUT", url, headers=headers, body=body)) as response:
            if response.status not in (201, 204):
                raise _failure(response, url, "blob upload")

    def put_manifest(self, repository: str, reference: str, data: bytes,
                     media_type: str = MEDIA_MANIFEST) -> str:
        url = self._url(repository, "manifests", reference)
        expected = digest_of(data)
        with contextlib.closing(self._send("PUT", url, headers=(("Content-Type", media_type),),
                                           body=data)) as response:
            if response.status not in (200, 201):
                raise _failure(response, url, "manifest upload")
            answered = response.headers.get("docker-content-digest")
        if answered and answered != expected:
            raise NetworkError(f"the registry stored the manifest as {answered}, not {expected}",
                               where=url, hint="the registry changed the manifest's bytes")
        return expected

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The manifest's bytes and media type (content type header or its ``mediaType``)."""
        url = self._url(repository, "manifests", reference)
        accept = ", ".join((MEDIA_MANIFEST, MEDIA_INDEX, DOCKER_MANIFEST))
        with contextlib.closing(self._send("GET", url, headers=(("Accept", accept),))
                                ) as response:
            if response.status != 200:
                raise _failure(response, url, "manifest")
            data = _read_limited(response, 4 << 20, url)
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return data, media_type

    def get_blob(self, repository: str, digest: str, *, limit: int = 4 << 20) -> bytes:
        """A small blob (a config), checked against its digest."""
        url = self._url(repository, "blobs", digest)
        with contextlib.closing(self._send("GET", url)) as response:
            if response.status != 200:
                raise _failure(response, url, "blob")
            data = _read_limited(response, limit, url)
        if digest_of(data) != digest:
            raise HashMismatchError(what="blob", where=url, expected=digest,
                                    actual=digest_of(data), hint="nothing was kept")
        return data

    def download_blob(self, repository: str, digest: str, dest: Path) -> None:
        """Stream a blob to ``dest``; it appears only when its sha256 matches ``digest``."""
        url = self._url(repository, "blobs", digest)
        sha = hashlib.sha256()
        with contextlib.closing(self._send("GET", url)) as response:
            if response.status != 200:
                raise _failure(response, url, "blob")
            try:
                with atomic_output(dest) as tmp, tmp.open("wb") as out:
                    for chunk in _chunks(response, url):
                        sha.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                    actual = "sha256:" + sha.hexdigest()
                    if actual != digest:
                        raise HashMismatchError(what="blob", where=url, expected=digest,
                                                actual=actual, hint="nothing was kept")
            except OSError as exc:
                raise BuilderError(f"cannot write: {exc.strerror or exc}",
                                   where=str(dest)) from exc


def _chunks(response: HttpResponse, url: str) -> Iterator[bytes]:
    try:
        while chunk := response.read(CHUNK):
            yield chunk
    except OSError as exc:
        raise NetworkError(f"transfer failed: {exc}", where=url) from exc


def _read_limited(response: HttpResponse, limit: int, url: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in _chunks(response, url):
        size += len(chunk)
        if size > limit:
            raise NetworkError(f"larger than the {limit} bytes expected", where=url)
        parts.append(chunk)
    return b"".join(parts)


def _denied(url: str) -> NetworkError:
    return NetworkError("the registry refused access (HTTP 401)", where=url,
                        hint="pass --username and --password-stdin with an account that may "
                        "push or pull this repository")


def _failure(response: HttpResponse, url: str, what: str) -> NetworkError:
    """A registry error with the codes and messages from its JSON error body."""
    details = ""
    try:
        body = json.loads(response.read(64 << 10) or b"{}")
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list):
            details = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors
                                if isinstance(e, dict))
    except (ValueError, OSError):
        pass
    text = f"{what} failed: HTTP {response.status}" + (f" ({details})" if details else "")
    if response.status == 401:
        return _denied(url)
    return NetworkError(text, where=url, missing=response.status == 404)
