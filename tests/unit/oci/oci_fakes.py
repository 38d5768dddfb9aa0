"""Tiny bundles and an in-memory registry (the HTTP port of builder.oci) for the OCI tests."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.bundle.archive import write_archive
from builder.fsutil import canonical_json
from builder.oci.http import HttpRequest, HttpResponse

EPOCH = 1700000000


def manifest_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format_version": 1, "name": "tiny", "version": "1.0", "summary": "A tiny app",
        "target": "x86_64-unknown-linux-gnu", "arch": "x86_64", "libc": "gnu",
        "input_digest": "sha256:" + "ab" * 32, "final_root": "/opt/apps/tiny",
        "ui": {"kind": "cli", "name": "Tiny"}, "service": None, "source_date_epoch": EPOCH,
    }
    data.update(overrides)
    return data


def make_bundle(dest: Path, *, files: dict[str, bytes] | None = None,
                manifest: dict[str, Any] | None = None, service_def: bool = True,
                level: int = 3, umask: int = 0o022) -> Path:
    """A bundle made by the real archiver from a small tree (``files`` adds or replaces)."""
    root = dest.parent / (dest.name + ".tree")
    tree: dict[str, bytes] = {
        "manifest.json": canonical_json(manifest or manifest_dict()).encode(),
        "app/bin/tool": b"#!/bin/sh\necho hi\n",
        "app/python/lib/mod.py": b"x = 1\n",
        "app/share/data.txt": b"data" * 5000,
    }
    if service_def:
        tree["service-def.json"] = b'{"prestart": []}\n'
    tree.update(files or {})
    old = os.umask(umask)
    try:
        for rel, data in tree.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (root / "app/bin/tool").chmod(0o755)
        (root / "app/python/bin").mkdir(parents=True)
        (root / "app/python/bin/python3").symlink_to("python3.11")
        (root / "app/share/empty").mkdir()
    finally:
        os.umask(old)
    write_archive(root, dest, mtime=EPOCH, level=level)
    return dest


def tree_of(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Every entry below root: (kind, permission bits, content or link target)."""
    entries: dict[str, tuple[str, int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entries[rel] = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            entries[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
        else:
            entries[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return entries


def response(status: int, body: bytes = b"", **headers: str) -> HttpResponse:
    return HttpResponse(status=status, stream=io.BytesIO(body),
                        headers={k.replace("_", "-").lower(): v for k, v in headers.items()})


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return response(status, body, content_type="application/json")


@dataclass
class FakeRegistry:
    """The registry API v2 in memory, at http(s)://reg.test; optional bearer token auth."""

    token: str | None = None  # when set, every /v2/ request needs "Bearer <token>"
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    uploads: dict[str, str] = field(default_factory=dict)

    def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append((request.method, request.url))
        parts = urllib.parse.urlsplit(request.url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        headers = dict(request.headers)
        if parts.netloc == "auth.test":
            if parts.path == "/token" and query.get("service") == "reg.test":
                return response(200, json.dumps({"token": self.token}).encode())
            return response(404)
        if self.token is not None and headers.get("Authorization") != f"Bearer {self.token}":
            challenge = ('Bearer realm="https://auth.test/token",service="reg.test",'
                         'scope="repository:apps/tiny:pull,push"')
            return response(401, b"", www_authenticate=challenge)
        body = request.body.read_bytes() if isinstance(request.body, Path) else request.body
        return self._route(request.method, parts.path, query, headers, body or b"")

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> HttpResponse:
        if m := re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", path):
            data = self.blobs.get(m[2])
            if data is None:
                return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            return response(200, b"" if method == "HEAD" else data,
                             content_length=str(len(data)))
        if method == "POST" and (m := re.fullmatch(r"/v2/(.+)/blobs/uploads/", path)):
            session = f"u{len(self.uploads)}"
            self.uploads[session] = m[1]
            return response(202, location=f"/v2/{m[1]}/blobs/uploads/{session}?_state=s")
        if method == "PUT" and (m := re.fullmatch(r"/v2/(.+)/blobs/uploads/(\w+)", path)):
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if query.get("digest") != digest or query.get("_state") != "s":
                return _error(400, "DIGEST_INVALID", "provided digest did not match")
            self.blobs[digest] = body
            return response(201)
        if m := re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path):
            return self._manifest(method, m[1], m[2], headers, body)
        return _error(404, "NAME_UNKNOWN", f"no route for {method} {path}")

    def _manifest(self, method: str, repo: str, ref: str, headers: dict[str, str],
                  body: bytes) -> HttpResponse:
        if method == "PUT":
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            value = (body, headers.get("Content-Type", ""))
            self.manifests[(repo, ref)] = self.manifests[(repo, digest)] = value
            return response(201, docker_content_digest=digest)
        if (repo, ref) not in self.manifests:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        data, media_type = self.manifests[(repo, ref)]
        return response(200, data, content_type=media_type)
