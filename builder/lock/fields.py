"""Checks of the lock's fields that builder later uses as paths or URLs.

A lock is data from a file anyone can edit: every field joined to a directory (file names,
sha256 digests of cache keys, target triples, architectures, Python minors) must be one plain
path component of the expected shape, and every URL one of the schemes a build fetches from.
Each check returns a reason (``None`` when the value is fine) so the reader can say where.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

SHA256 = re.compile(r"^[0-9a-f]{64}$")
TRIPLE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+){2,3}$")
ARCH = re.compile(r"^[a-z0-9_]+$")
MINOR = re.compile(r"^3\.[0-9]{1,3}$")
CANONICAL_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_~:-]{0,99}$")
INTERPRETER_FILE = re.compile(r"^cpython-[0-9][A-Za-z0-9.+_-]*\.tar\.(?:gz|zst)$")
DEB_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_%-]*\.deb$")
URL_SCHEMES = ("https", "http", "file")
PLATFORM_TAG = re.compile(r"^[a-z0-9_]+$")
MAX_NAME = 255
MAX_TEXT = 1024


def text(value: str) -> str | None:
    """Why ``value`` cannot be copied into a generated file (a ``# via`` comment: a newline
    would start a requirement line of its own)."""
    if len(value) > MAX_TEXT:
        return f"is longer than {MAX_TEXT} characters"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "must not contain control characters (newlines)"
    return None


def relative_path(value: str) -> str | None:
    """Why ``value`` is not a relative path that stays below the directory it is joined to."""
    if reason := text(value):
        return reason
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or not value:
        return "must be a relative path inside the source tree"
    return None


def plain_component(value: str) -> str | None:
    """Why ``value`` is not one plain file name (no separator, no dot-name, no control char)."""
    if not value or len(value) > MAX_NAME:
        return "must be a file name of 1 to 255 characters"
    if "/" in value or "\\" in value:
        return "must be a plain file name (no directory part)"
    if value.startswith("."):
        return "must not start with a dot"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "must not contain control characters"
    return None


def package_filename(filename: str, *, name: str) -> str | None:
    """Why ``filename`` is not a wheel or sdist file name of the project ``name``."""
    if reason := plain_component(filename):
        return reason
    try:
        if filename.endswith(".whl"):
            found = parse_wheel_filename(filename)[0]
        else:
            found = parse_sdist_filename(filename)[0]
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        return f"is not a wheel or source distribution file name ({exc})"
    if canonicalize_name(found) != canonicalize_name(name):
        return f"names the project {found!r}, not {name!r}"
    return None


def matches(pattern: re.Pattern[str], value: str, what: str) -> str | None:
    if reason := plain_component(value):
        return reason
    return None if pattern.fullmatch(value) else f"is not {what}"


def url(value: str) -> str | None:
    """Why ``value`` is not a URL a build may fetch from."""
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in URL_SCHEMES:
        return f"must be a {', '.join(URL_SCHEMES)} URL"
    if parts.scheme != "file" and not parts.hostname:
        return "has no host"
    return None
