"""Removing the host prefix from text files of an imported interpreter (pure byte functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# python-build-standalone's relocatable script header: sh runs the python next to the script
TRAMPOLINE = (
    "#!/bin/sh\n"
    "'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/'{exe}' \"$0\" \"$@\"\n"
    "' '''\n"
)


# a distribution's CPython lives in the system prefix, shared with everything else: there only
# the prefix itself and its Python paths are the interpreter's (not /usr/share/zoneinfo or
# /usr/bin/env)
SYSTEM_PREFIXES = frozenset({"/usr"})
_END = rb"[\s'\"`:;,)\]}=]|$"
_PYTHON_PATHS = rb"/(?:lib|include|bin)/(?:lib)?python"


def prefix_pattern(prefixes: Iterable[str]) -> re.Pattern[bytes]:
    """Matches any of ``prefixes`` as a whole path (not ``/opt/py`` inside ``/opt/python``); a
    system prefix (``/usr``) only alone or leading a Python path (``/usr/lib/python3.11``)."""
    alternatives = sorted({p.rstrip("/") for p in prefixes if p.strip("/")}, key=len,
                          reverse=True)
    if not alternatives:
        raise ValueError("no prefix to replace")
    own = [p for p in alternatives if p not in SYSTEM_PREFIXES]
    system = [p for p in alternatives if p in SYSTEM_PREFIXES]
    parts = []
    if own:
        body = b"|".join(re.escape(p.encode()) for p in own)
        parts.append(rb"(?:" + body + rb")(?![^/\s'\"`:;,)\]}=])")
    if system:
        body = b"|".join(re.escape(p.encode()) for p in system)
        parts.append(rb"(?:" + body + rb")(?=" + _END + rb"|" + _PYTHON_PATHS + rb")")
    return re.compile(b"|".join(parts))


def is_text(data: bytes) -> bool:
    return b"\0" not in data[:8192]


def python_shebang(data: bytes, pattern: re.Pattern[bytes]) -> bool:
    """A ``#!<prefix>/bin/python...`` script."""
    if not data.startswith(b"#!"):
        return False
    first = data.split(b"\n", 1)[0][2:].strip()
    match = pattern.match(first)
    return match is not None and first[match.end():].startswith(b"/bin/python")


def relocatable_script(data: bytes, *, exe: str) -> bytes:
    """Replace a python shebang line by the sh trampoline that runs ``exe`` from the same dir."""
    rest = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return TRAMPOLINE.format(exe=exe).encode() + rest


def replace_prefix(data: bytes, pattern: re.Pattern[bytes], placeholder: str) -> bytes:
    return pattern.sub(placeholder.encode(), data)
