"""The environment builder reads, resolved once at the CLI edge and passed down as values."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import UsageError

if TYPE_CHECKING:
    from builder.oci import Credentials


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    value = os.environ.get("BUILDER_CACHE_DIR")
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("builder"))


def pbs_mirror() -> str | None:
    return os.environ.get("BUILDER_PBS_MIRROR") or None


def source_date_epoch() -> int:
    from builder.bundle.archive import DEFAULT_MTIME

    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return DEFAULT_MTIME
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a non-negative integer, not {value!r}")
    return int(value)


def progress() -> bool:
    return sys.stderr.isatty()


def registry_credentials(username: str | None, password_stdin: bool) -> Credentials | None:
    """``--username U --password-stdin``: the password is read from standard input, never argv."""
    from builder.oci import Credentials

    if password_stdin != (username is not None):
        raise UsageError("--username and --password-stdin go together")
    if username is None:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: standard input had no password")
    return Credentials(username=username, password=password)
