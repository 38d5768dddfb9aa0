"""The bundle's RECORD: every path of the bundle with its type, mode, size and sha256.

``app/.builder-record.jsonl`` lists, sorted, every directory, regular file and symlink below
``app/`` and ``service-def.json`` (everything but ``manifest.json`` and the RECORD itself), one
JSON array a line::

    ["app/python/bin/python3.11","f","0755",16432,"<sha256>"]
    ["app/python","d","0755"]
    ["app/python/bin/python3","l","python3.11"]

``manifest.json`` names the RECORD with its sha256 (``"record"``); the manifest cannot list its
own hash, so the store keeps the manifest's sha256 in the entry's record at install time. The
RECORD lives below ``app/`` so that it travels in the OCI layer too (top-level files travel as
annotations, which are too small for it) and a container can check the tree it mounts.

Modes are the normalised ones every builder archive and extraction writes (0644/0755 files, 0755
directories); a tree that differs in any of these is not the bundle that was built.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from builder.errors import BuilderError
from builder.fsutil import CHUNK
from builder.layout import APP, MANIFEST, SERVICE_DEF

RECORD_FILE = f"{APP}/.builder-record.jsonl"
MAX_RECORD_BYTES = 256 << 20


class Item(NamedTuple):
    """One path as recorded or as found: kind ``f`` (file), ``d`` (directory), ``l`` (symlink),
    ``?`` (anything else, only ever found). A named tuple, not a frozen dataclass: an install
    makes two of these per path (the RECORD's and what it wrote), twice as fast this way."""

    kind: str
    mode: int = 0  # permission and set-id bits (files and directories)
    size: int = 0  # files
    digest: str = ""  # files: sha256; symlinks: the target

    def to_json(self, path: str) -> list[Any]:
        if self.kind == "f":
            return [path, "f", f"{self.mode:04o}", self.size, self.digest]
        if self.kind == "d":
            return [path, "d", f"{self.mode:04o}"]
        return [path, "l", self.digest]


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    kind: str  # "added" | "removed" | "type" | "mode" | "content" | "target" | "unreadable"
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


def _kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    return "?"


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: Path, errors: list[Difference]) -> Iterator[tuple[str, str]]:
    """(path relative to ``root``, absolute path) of ``app`` and below and ``service-def.json``;
    links are not followed; the RECORD and ``manifest.json`` are left out. Directories that
    cannot be listed go to ``errors``."""
    base = str(root)
    if os.path.lexists(f"{base}/{SERVICE_DEF}"):
        yield SERVICE_DEF, f"{base}/{SERVICE_DEF}"
    app = f"{base}/{APP}"
    if (root / APP).is_symlink() or not (root / APP).is_dir():
        return
    yield APP, app
    stack = [(APP, app)]
    while stack:
        rel, path = stack.pop()
        try:
            with os.scandir(path) as listing:
                children = [(f"{rel}/{e.name}", e.path, e.is_dir(follow_symlinks=False))
                            for e in listing]
        except OSError as exc:
            errors.append(Difference(rel, "unreadable", f"cannot be listed: {exc.strerror}"))
            continue
        for child, child_path, is_dir in children:
            if child != RECORD_FILE:
                yield child, child_path
            if is_dir:
                stack.append((child, child_path))


def scan(root: Path, *, normalise_modes: bool = False, recorded: dict[str, Item] | None = None,
         unchanged_before_ns: int | None = None) -> tuple[dict[str, Item], list[Difference]]:
    """What is under ``root`` now (every file read and hashed), and what could not be read.

    ``normalise_modes``: record the mode an archive would carry (the build side), not the mode
    on disk (the verify side). ``unchanged_before_ns``: a file whose inode changed (ctime: any
    write, chmod, rename or replacement sets it, and it cannot be set back) before this instant,
    with the recorded size, is taken to have the ``recorded`` sha256 without being read."""
    found: dict[str, Item] = {}
    unreadable: list[Difference] = []
    for rel, path in _walk(root, unreadable):
        st = os.lstat(path)
        kind = _kind_of(st.st_mode)
        mode = stat.S_IMODE(st.st_mode)
        if normalise_modes:
            mode = 0o755 if kind == "d" or mode & 0o111 else 0o644
        if kind == "f" and recorded is not None and unchanged_before_ns is not None \
                and st.st_ctime_ns < unchanged_before_ns \
                and (known := recorded.get(rel)) is not None and known.size == st.st_size:
            found[rel] = Item("f", mode, st.st_size, known.digest)
        elif kind == "f":
            try:
                found[rel] = Item("f", mode, st.st_size, hash_file(Path(path)))
            except OSError as exc:
                unreadable.append(Difference(rel, "unreadable",
                                             f"cannot be read: {exc.strerror or exc}"))
                found[rel] = Item("f", mode, st.st_size, "?")
        elif kind == "d":
            found[rel] = Item("d", mode)
        elif kind == "l":
            found[rel] = Item("l", digest=os.readlink(path))  # noqa: PTH115 (str paths: fast)
        else:
            found[rel] = Item("?", mode)
    return found, unreadable


def render(items: dict[str, Item]) -> bytes:
    """The RECORD's bytes: sorted by path, one compact JSON array a line (deterministic)."""
    lines = (json.dumps(items[p].to_json(p), separators=(",", ":"), ensure_ascii=False)
             for p in sorted(items))
    return "".join(line + "\n" for line in lines).encode("utf-8")


def write_record(bundle_root: Path) -> tuple[str, int, int]:
    """Write the RECORD of the staged tree; returns its sha256, its size and its entry count."""
    items, unreadable = scan(bundle_root, normalise_modes=True)
    if unreadable:
        raise BuilderError(f"cannot record the tree: {unreadable[0]}", where=str(bundle_root))
    odd = sorted(p for p, i in items.items() if i.kind == "?")
    if odd:
        raise BuilderError(f"special file in the bundle: {odd[0]}", where=str(bundle_root))
    data = render(items)
    path = bundle_root / RECORD_FILE
    path.write_bytes(data)
    path.chmod(0o644)
    return hashlib.sha256(data).hexdigest(), len(data), len(items)


def parse(raw: bytes, *, where: str) -> dict[str, Item]:
    items: dict[str, Item] = {}
    try:
        lines = raw.decode("utf-8").splitlines()
        try:  # one JSON document: much faster than a json.loads per line
            rows = json.loads("[" + ",".join(lines) + "]")
            if not isinstance(rows, list) or len(rows) != len(lines):
                raise ValueError("not one array a line")
        except ValueError:  # the line at fault, for the message
            rows = [json.loads(line) for line in lines]
        for number, row in enumerate(rows, 1):
            items[_checked_path(row[0], number)] = _item(row, number)
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise BuilderError(f"unreadable RECORD: {exc}", where=where,
                           hint="the bundle or the entry is damaged; reinstall it") from exc
    return items


def _checked_path(path: Any, number: int) -> str:
    if not isinstance(path, str) or not (path in (APP, SERVICE_DEF) or path.startswith(APP + "/")) \
            or ".." in path.split("/") or path == MANIFEST:
        raise ValueError(f"line {number}: bad path {path!r}")
    return path


def _item(row: list[Any], number: int) -> Item:
    kind = row[1]
    if kind == "f" and len(row) == 5 and isinstance(row[3], int) and isinstance(row[4], str):
        return Item("f", int(row[2], 8), row[3], row[4])
    if kind == "d" and len(row) == 3:
        return Item("d", int(row[2], 8))
    if kind == "l" and len(row) == 3 and isinstance(row[2], str):
        return Item("l", digest=row[2])
    raise ValueError(f"line {number}: malformed entry")


_NAMES = {"f": "a file", "d": "a directory", "l": "a symlink", "?": "a special file"}


def compare(recorded: dict[str, Item], found: dict[str, Item]) -> list[Difference]:
    """Every way ``found`` differs from ``recorded``, sorted by path."""
    if recorded == found:  # equal items cannot differ: the whole walk only when something does
        return []
    out: list[Difference] = []
    for path in sorted(recorded.keys() | found.keys()):
        out.extend(_differences(path, recorded.get(path), found.get(path)))
    return out


def _differences(path: str, want: Item | None, have: Item | None) -> Iterable[Difference]:
    if have is None:
        return [Difference(path, "removed", "missing (the RECORD lists it)")]
    if want is None:
        return [Difference(path, "added", f"{_NAMES[have.kind]} the RECORD does not list")]
    if want.kind != have.kind:
        return [Difference(path, "type", f"is {_NAMES[have.kind]}, the RECORD says "
                                         f"{_NAMES[want.kind]}")]
    out = []
    if want.kind in "fd" and want.mode != have.mode:
        out.append(Difference(path, "mode", f"mode {have.mode:04o}, the RECORD says "
                                            f"{want.mode:04o}"))
    if want.kind == "f" and have.digest != "?" and (want.size, want.digest) != (have.size,
                                                                                have.digest):
        out.append(Difference(path, "content", f"content differs ({have.size} bytes, sha256 "
                                               f"{have.digest[:16]}…; the RECORD says "
                                               f"{want.size} bytes, {want.digest[:16]}…)"))
    if want.kind == "l" and want.digest != have.digest:
        out.append(Difference(path, "target", f"symlink to {have.digest!r}, the RECORD says "
                                              f"{want.digest!r}"))
    return out
