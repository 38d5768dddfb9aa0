"""``*.dist-info/RECORD`` files: find the rows an edit touches, and rewrite them."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import posixpath
from collections.abc import Callable, Set
from pathlib import PurePosixPath

from builder.errors import BuilderError
from builder.fsutil import CHUNK

Row = tuple[str, str, str]


def record_hash(data: bytes) -> str:
    """The ``sha256=<urlsafe base64, no padding>`` form RECORD rows use."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def record_hash_file(path: str) -> tuple[str, int]:
    """(RECORD hash, size) of a file on disk, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:  # noqa: PTH123 - plain str paths from the applier
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    value = base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")
    return f"sha256={value}", size


def parse_record(text: str, *, where: str) -> tuple[Row, ...]:
    rows: list[Row] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise BuilderError(f"line {number}: expected 3 fields, found {len(row)}", where=where)
        rows.append((row[0], row[1], row[2]))
    return tuple(rows)


def render_record(rows: tuple[Row, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=",", quotechar='"', lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue()


def row_target(record: PurePosixPath, row_path: str) -> PurePosixPath | None:
    """The app-relative path a row names (rows are relative to the dist-info's parent)."""
    if row_path.startswith("/"):
        return None
    base = record.parent.parent
    joined = posixpath.normpath(posixpath.join(str(base), row_path))
    return None if joined.startswith("../") or joined == ".." else PurePosixPath(joined)


def rows_touched(
    record: PurePosixPath,
    rows: tuple[Row, ...],
    *,
    removed: Set[PurePosixPath],
    rewritten: Set[PurePosixPath],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(rows to drop, rows to rehash); every ``.pyc`` row is rehashed (compileall rewrites it)."""
    drop: set[str] = set()
    rehash: set[str] = set()
    for path, _hash, _size in rows:
        target = row_target(record, path)
        if target is None or target == record:
            continue
        if target in removed:
            drop.add(path)
        elif target in rewritten or target.suffix == ".pyc":
            rehash.add(path)
    return tuple(sorted(drop)), tuple(sorted(rehash))


def rewrite_rows(
    record: PurePosixPath,
    rows: tuple[Row, ...],
    *,
    drop: Set[str],
    rehash: Set[str],
    digest: Callable[[PurePosixPath], tuple[str, int] | None],
) -> tuple[Row, ...]:
    """Rows with ``drop`` removed and ``rehash`` recomputed (a vanished file drops its row)."""
    out: list[Row] = []
    for row in rows:
        path = row[0]
        if path in drop:
            continue
        target = row_target(record, path)
        if path in rehash and target is not None:
            found = digest(target)
            if found is None:
                continue
            out.append((path, found[0], str(found[1])))
        else:
            out.append(row)
    return tuple(out)
