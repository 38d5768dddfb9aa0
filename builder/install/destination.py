"""A pypa/installer destination that writes files the way pip does, and refuses real conflicts.

Mirrors ``pip/_internal/operations/install/wheel.py`` (pip 26.3, the reference in the venv):

- **Entry-point launchers** use pip's template (``PipScriptMaker.script_template``: no
  ``import re``) and distlib's shebang rule (plain ``#!<python>`` unless the path has a space or
  the line would pass 127 bytes, then the ``/bin/sh`` + ``'''exec'`` form). They are written
  after every file of the wheel and replace one of them (``maker.clobber = True``), mode
  ``st_mode | 0o555`` (``maker.set_mode``).
- **Files** get ``0o666 & ~umask``, and ``0o777 & ~umask | 0o111`` when the zip entry has an
  executable bit (``ZipBackedFile.save``, ``zip_item_is_executable``). ``#!python`` (also
  ``#!pythonw``, ``#!python3 -u``) as the first line of a ``.data/scripts`` file becomes
  ``#!<interpreter>\\n`` whatever that line ended with (``fix_script``; installer's
  ``fix_shebang`` does the same); the rest of the file, CRLF or not, is kept.
- Inside one wheel a later member replaces an earlier one at the same path (pip unlinks and
  rewrites). Across wheels pip overwrites too, silently, so the result depends on install
  order; builder accepts identical bytes and refuses different ones (``InstallConflictError``).
- ``RECORD`` has one row per installed file, sorted (pip's ``_normalized_outrows``).
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.utils import Scheme, copyfileobj_with_hashing, make_file_executable

if TYPE_CHECKING:
    from installer.scripts import ScriptSection

# pip's PipScriptMaker.script_template (distlib's, without ``import re``)
PIP_SCRIPT_TEMPLATE = """\
import sys
from {module} import {import_name}
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit({func}())
"""
_MAX_SHEBANG = 127  # distlib ScriptMaker._build_shebang on Linux
_VERSIONED_PIP = re.compile(r"pip(\d+(\.\d+)?)?$")
_VERSIONED_EASY_INSTALL = re.compile(r"easy_install(-\d+\.\d+)?$")


def pip_shebang(interpreter: str) -> bytes:
    """distlib's shebang for ``interpreter``; a path with spaces is shell-quoted as installer
    does (pip passes it unquoted, and that launcher would not start; build steps run these)."""
    executable = interpreter.encode("utf-8")
    if b" " not in executable and len(executable) + 3 <= _MAX_SHEBANG:
        return b"#!" + executable + b"\n"
    quoted = shlex.quote(interpreter).encode("utf-8")
    return b"#!/bin/sh\n'''exec' " + quoted + b' "$0" "$@"\n' + b"' '''\n"


def pip_console_script(interpreter: str, module: str, attr: str) -> bytes:
    """The launcher pip writes for ``name = module:attr`` (console and gui alike on POSIX)."""
    code = PIP_SCRIPT_TEMPLATE.format(module=module, import_name=attr.partition(".")[0],
                                      func=attr)
    return pip_shebang(interpreter) + code.encode("utf-8")


class FileConflict(Exception):
    """Different bytes are already at a path another distribution (or the interpreter) owns."""

    def __init__(self, path: Path, owner: str | None) -> None:
        super().__init__(str(path))
        self.path = path
        self.owner = owner


@dataclass(kw_only=True)
class PipLikeDestination(SchemeDictionaryDestination):
    """One wheel's destination; ``ledger`` (path -> "name version") is shared by the wheels of
    one install so a conflict can name both distributions."""

    owner: str = ""
    python_minor: str = ""  # the target's "3.X", for pip's versioned pip/easy_install names
    ledger: MutableMapping[Path, str] = field(default_factory=dict)
    _console: dict[str, tuple[str, str]] = field(default_factory=dict, init=False, repr=False)
    _gui: dict[str, tuple[str, str]] = field(default_factory=dict, init=False, repr=False)

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        target = self._path_with_destdir(scheme, path)
        entry = self._place(target, path, stream)
        if is_executable:
            make_file_executable(target)
        return entry

    def _place(self, target: Path, path: str, stream: BinaryIO) -> RecordEntry:
        """Write ``stream`` at ``target`` unless another owner has different bytes there."""
        if self.ledger.get(target) == self.owner or not os.path.lexists(target):
            if os.path.lexists(target):
                target.unlink()  # an earlier member of this wheel: the later one wins
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                digest, size = copyfileobj_with_hashing(stream, out, self.hash_algorithm)
            self.ledger[target] = self.owner
            return RecordEntry(path, Hash(self.hash_algorithm, digest), size)
        incoming = target.with_name(f".{target.name}.builder-incoming")
        try:
            with incoming.open("wb") as out:
                digest, size = copyfileobj_with_hashing(stream, out, self.hash_algorithm)
            if not _same_bytes(incoming, target):
                raise FileConflict(target, self.ledger.get(target))
        finally:
            incoming.unlink(missing_ok=True)
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    def write_script(
        self, name: str, module: str, attr: str, section: ScriptSection
    ) -> RecordEntry:
        """Remember the entry point; launchers are written after the wheel's files (pip's
        order), under the names ``pip_script_names`` gives."""
        target = self._path_with_destdir(Scheme("scripts"), name)  # refuses ../ names
        if target.parent != Path(os.path.abspath(self.scheme_dict["scripts"])):  # noqa: PTH100
            raise ValueError(f"entry point name {name!r} is not a plain file name")
        (self._console if section == "console" else self._gui)[name] = (module, attr)
        return RecordEntry(name, None, None)  # replaced by the real row in finalize

    def _write_launchers(self) -> list[tuple[Scheme, RecordEntry]]:
        scripts = Scheme("scripts")
        launchers = dict(pip_script_names(self._console, self.python_minor))
        launchers.update(self._gui)  # distlib writes gui launchers after console ones
        rows = []
        for name, (module, attr) in launchers.items():
            target = self._path_with_destdir(scripts, name)
            if self.ledger.get(target) == self.owner:  # clobber this wheel's own file
                target.unlink()
            data = pip_console_script(self.interpreter, module, attr)
            rows.append((scripts, self._place(target, name, io.BytesIO(data))))
            target.chmod(target.stat().st_mode | 0o555)
        return rows

    def finalize_installation(
        self,
        scheme: Scheme,
        record_file_path: str,
        records: Iterable[tuple[Scheme, RecordEntry]],
    ) -> None:
        """Write the launchers, then a RECORD with one row per file sorted by its path as
        written (pip's ``_normalized_outrows``; installer sorts by the in-scheme path)."""
        files = [(s, r) for s, r in records if not (s == "scripts" and r.hash_ is None)]
        launchers = self._write_launchers()
        root = self.scheme_dict[scheme]
        last: dict[str, tuple[str, str, str]] = {}
        for file_scheme, record in files + launchers:  # launchers were written last: they win
            prefix = None
            if file_scheme != scheme:
                prefix = os.path.relpath(self.scheme_dict[file_scheme], start=root) + "/"
            path, digest, size = record.to_row(prefix)
            key = posixpath.normpath(path)
            last[key] = (key, digest, size)
        text = io.StringIO(newline="")
        writer = csv.writer(text, delimiter=",", quotechar='"', lineterminator="\n")
        writer.writerows(last[key] for key in sorted(last))
        with io.BytesIO(text.getvalue().encode("utf-8")) as stream:
            self.write_to_fs(scheme, record_file_path, stream, is_executable=False)


def pip_script_names(
    console: Mapping[str, tuple[str, str]], minor: str
) -> tuple[tuple[str, tuple[str, str]], ...]:
    """Console launchers as pip names them (``get_console_script_specs``, no ENSUREPIP_OPTIONS):
    ``pip`` also as ``pip3`` and ``pip3.X`` for the target's X, ``easy_install`` also as
    ``easy_install-3.X``; the versioned names the wheel declares for its build Python dropped."""
    rest = dict(console)
    out: list[tuple[str, tuple[str, str]]] = []
    pip = rest.pop("pip", None)
    if pip is not None:
        out += [("pip", pip), (f"pip{minor.partition('.')[0]}", pip), (f"pip{minor}", pip)]
        rest = {k: v for k, v in rest.items() if not _VERSIONED_PIP.match(k)}
    easy_install = rest.pop("easy_install", None)
    if easy_install is not None:
        out += [("easy_install", easy_install), (f"easy_install-{minor}", easy_install)]
        rest = {k: v for k, v in rest.items() if not _VERSIONED_EASY_INSTALL.match(k)}
    return (*out, *rest.items())


def _same_bytes(a: Path, b: Path) -> bool:
    if not b.is_file() or a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk_a = fa.read(1 << 16)
            if chunk_a != fb.read(1 << 16):
                return False
            if not chunk_a:
                return True


__all__ = ["PIP_SCRIPT_TEMPLATE", "FileConflict", "PipLikeDestination", "pip_console_script",
           "pip_script_names", "pip_shebang"]
