"""A pypa/installer wheel source that hands files over the way pip lays them out.

pip (``pip/_internal/operations/install/wheel.py``, ``_install_wheel``) differs from a plain
``installer.sources.WheelFile`` in three ways that real wheels depend on; this source mirrors them:

- **Entry point beats data script.** pip drops a ``.data/scripts`` file whose name (less ``.exe``,
  ``-script.py`` or ``.pya``) is also a console or gui entry point (``is_entrypoint_wrapper``),
  then writes the entry point's own launcher. ``jupyter_contrib_core`` 0.4.0 ships
  ``jupyter-contrib`` both ways; installer alone stops at "File already exists".
- **Order.** pip writes root files, then the other ``.data`` files, then ``.data/scripts``
  (``files = chain(root, other_scheme_files, script_scheme_files)``), each in zip order; when
  a wheel maps two members to one path the later one wins. ``get_contents`` yields that order.
- **Which directory is ``.data``.** pip treats a top-level ``*.data`` directory as the data
  directory (``is_data_scheme_path``) whatever the wheel's file name spells; installer builds
  the name from the file name, so a renamed wheel would land its scripts in site-packages.

It also checks every member against its RECORD hash while it is being read (one pass), which pip
does not do: a mismatch means a damaged file, not something to install.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import posixpath
import stat
import zipfile
from collections.abc import Iterator
from functools import cached_property
from typing import BinaryIO, cast

from installer.records import Hash, InvalidRecordEntry, RecordEntry
from installer.sources import WheelContentElement, WheelFile
from installer.utils import parse_entrypoints
from packaging.utils import canonicalize_name

_WRAPPER_SUFFIXES = (".exe", "-script.py", ".pya")


class RecordMismatch(ValueError):
    """A wheel member whose bytes do not match its RECORD row."""


def wrapper_target(script_name: str) -> str:
    """The entry point name a setuptools-made wrapper file stands for (pip's matchname)."""
    lowered = script_name.lower()
    for suffix in _WRAPPER_SUFFIXES:
        if lowered.endswith(suffix):
            return script_name[: -len(suffix)]
    return script_name


class _CheckedStream:
    """Reads a member and, when the end is reached, compares what was read with RECORD."""

    def __init__(self, raw: BinaryIO, *, path: str, expected: Hash, size: int | None) -> None:
        self._raw = raw
        self._path = path
        self._expected = expected
        self._size = size
        self._reset()

    def _reset(self) -> None:
        self._hash = hashlib.new(self._expected.name)
        self._count = 0
        self._checked = False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("only a rewind to the start is supported")
        self._raw.seek(0)
        self._reset()
        return 0

    def _take(self, data: bytes, *, at_end: bool) -> bytes:
        self._hash.update(data)
        self._count += len(data)
        if at_end and not self._checked:
            self._checked = True
            value = base64.urlsafe_b64encode(self._hash.digest()).decode("ascii").rstrip("=")
            if value != self._expected.value or (
                self._size is not None and self._size != self._count
            ):
                raise RecordMismatch(
                    f"{self._path}: its bytes ({self._expected.name}={value}, "
                    f"{self._count} bytes) do not match RECORD "
                    f"({self._expected}, {self._size} bytes)"
                )
        return data

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        at_end = not data or size is None or size < 0
        return self._take(data, at_end=at_end)

    def readline(self, size: int | None = -1) -> bytes:
        data = self._raw.readline(-1 if size is None else size)
        return self._take(data, at_end=not data)


class PipLikeWheel(WheelFile):
    """``installer.sources.WheelFile`` with pip's choice, order and ``.data`` detection."""

    def __init__(self, f: zipfile.ZipFile) -> None:
        super().__init__(f)
        self._zip = f

    @cached_property
    def data_dir(self) -> str:
        """The top-level ``*.data`` directory of this distribution, as the zip spells it."""
        stem = self.dist_info_dir[: -len(".dist-info")]
        wanted = _name_version_key(stem)
        found = sorted(
            {
                name.split("/", 1)[0]
                for name in self._zip.namelist()
                if "/" in name and name.split("/", 1)[0].endswith(".data")
            }
        )
        for top in found:
            if _name_version_key(top[: -len(".data")]) == wanted:
                return top
        return found[0] if len(found) == 1 else f"{stem}.data"

    @cached_property
    def entry_point_names(self) -> frozenset[str]:
        """Console and gui script names this wheel declares."""
        if "entry_points.txt" not in self.dist_info_filenames:
            return frozenset()
        text = self.read_dist_info("entry_points.txt")
        try:
            return frozenset(name for name, _m, _a, _s in parse_entrypoints(text))
        except (AssertionError, configparser.Error) as exc:
            raise ValueError(f"invalid entry_points.txt: {exc or 'an entry without :attr'}"
                             ) from exc

    def is_shadowed_script(self, member: str) -> bool:
        """A ``.data/scripts`` member that pip skips because an entry point has its name."""
        return wrapper_target(posixpath.basename(member)) in self.entry_point_names

    def _section(self, member: str) -> int:
        """0 root, 1 other ``.data`` schemes, 2 ``.data/scripts`` (pip's write order)."""
        parts = member.split("/", 2)
        if parts[0] != self.data_dir:
            return 0
        return 2 if len(parts) > 2 and parts[1] == "scripts" else 1

    def _records(self) -> dict[str, tuple[str, str, str]]:
        """RECORD rows read as leniently as pip reads them (``csv.reader``, short or long rows
        and unparsable hashes kept as rows without a hash, hence unchecked)."""
        records: dict[str, tuple[str, str, str]] = {}
        for raw in csv.reader(self.read_dist_info("RECORD").splitlines()):
            if not raw or not raw[0]:
                continue
            padded = [*raw, "", ""]
            row = (raw[0].replace("\\", "/"), padded[1], padded[2])
            try:
                RecordEntry.from_elements(*row)
            except InvalidRecordEntry:
                row = (row[0], "", "")
            records[row[0]] = row
        return records

    def get_contents(self) -> Iterator[WheelContentElement]:
        records = self._records()
        members = [i for i in self._zip.infolist() if not i.filename.endswith("/")]
        ordered = sorted(members, key=lambda info: self._section(info.filename))  # stable
        for info in ordered:
            if self._section(info.filename) == 2 and self.is_shadowed_script(info.filename):
                continue
            row = records.get(info.filename, (info.filename, "", ""))
            entry = RecordEntry.from_elements(*row)
            mode = info.external_attr >> 16
            executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
            with self._zip.open(info) as raw:
                stream = cast("BinaryIO", raw)
                if entry.hash_ is not None:
                    stream = cast("BinaryIO", _CheckedStream(
                        stream, path=info.filename, expected=entry.hash_, size=entry.size))
                yield row, stream, executable


def _name_version_key(stem: str) -> tuple[str, str]:
    name, _, version = stem.rpartition("-")
    return canonicalize_name(name), version
