"""Where python-build-standalone releases live: the release base URL, the mirror variable and
a mirror's layout. Locking reads a release's SHA256SUMS from there, fetching downloads the
pinned archive from there: one home for both."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from builder.net import is_url

DEFAULT_RELEASE_BASE = "https://github.com/astral-sh/python-build-standalone/releases/download"
MIRROR_ENV = "BUILDER_PBS_MIRROR"


def asset_url(base: str, release: str, filename: str) -> str:
    """``{base}/{release}/{filename}`` with the name percent-encoded (``+`` -> ``%2B``)."""
    return f"{base.rstrip('/')}/{urllib.parse.quote(release, safe='')}/" + urllib.parse.quote(
        filename, safe=""
    )


def mirror_location(mirror: str, release: str, filename: str) -> str:
    """Where a mirror keeps a release file: a URL below a base URL, or a path below a directory."""
    if is_url(mirror):
        return asset_url(mirror, release, filename)
    return str(Path(mirror) / release / filename)
