"""The cache of imported prefixes is verified each time it is used: its key covers every file
the import keeps, and the cached archive must have the sha256 recorded when it was made."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from test_cpython_prefix import fake_prefix, write

import builder.fetch.interpreter as interpreter
from builder.cpython.importer import ImportedRuntime, imported_filename
from builder.cpython.prefix import probe_prefix
from builder.fetch.interpreter import IMPORT_RECORD, interpreter_from, prefix_fingerprint


class FakeImport:
    """Stands in for the (seconds-long, real-CPython) import: writes an archive whose bytes
    depend on the prefix's os.py, counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prefix: Path, out_dir: Path, *, cache_dir: Path | None = None
                 ) -> ImportedRuntime:
        self.calls += 1
        info = probe_prefix(prefix)
        out_dir.mkdir(parents=True, exist_ok=True)
        archive = out_dir / imported_filename(info)
        archive.write_bytes(b"archive of " + (prefix / "lib/python3.11/os.py").read_bytes())
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        return ImportedRuntime(path=archive, sha256=digest, python_version=info.python_version,
                               triple=info.triple, vendored=())


@pytest.fixture
def fake_import(monkeypatch: pytest.MonkeyPatch) -> FakeImport:
    fake = FakeImport()
    monkeypatch.setattr(interpreter, "import_runtime", fake)
    return fake


def test_an_unchanged_prefix_is_imported_once(tmp_path: Path, fake_import: FakeImport) -> None:
    prefix = fake_prefix(tmp_path / "py")
    first = interpreter_from(prefix, cache_dir=tmp_path / "cache")
    again = interpreter_from(prefix, cache_dir=tmp_path / "cache")
    assert again == first and fake_import.calls == 1
    assert (first.archive.parent / IMPORT_RECORD).is_file()


def test_a_tampered_cached_archive_is_imported_again_with_a_message(
        tmp_path: Path, fake_import: FakeImport) -> None:
    prefix = fake_prefix(tmp_path / "py")
    first = interpreter_from(prefix, cache_dir=tmp_path / "cache")
    first.archive.write_bytes(first.archive.read_bytes() + b" and an added file")
    messages: list[str] = []
    again = interpreter_from(prefix, cache_dir=tmp_path / "cache", log=messages.append)
    assert fake_import.calls == 2
    assert again.sha256 == first.sha256 == hashlib.sha256(again.archive.read_bytes()).hexdigest()
    assert len(messages) == 1
    assert messages[0].startswith(f"warning: the cached import {first.archive} does not have "
                                  f"the sha256 recorded when it was made (recorded "
                                  f"{first.sha256}, found ")
    assert messages[0].endswith(": importing the prefix again")


def test_a_cached_archive_without_its_record_is_not_trusted(
        tmp_path: Path, fake_import: FakeImport) -> None:
    prefix = fake_prefix(tmp_path / "py")
    first = interpreter_from(prefix, cache_dir=tmp_path / "cache")
    (first.archive.parent / IMPORT_RECORD).unlink()
    messages: list[str] = []
    interpreter_from(prefix, cache_dir=tmp_path / "cache", log=messages.append)
    assert fake_import.calls == 2 and "recorded None" in messages[0]


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_the_cache_key_covers_every_kept_file(tmp_path: Path) -> None:
    prefix = fake_prefix(tmp_path / "py")
    info = probe_prefix(prefix)
    base = prefix_fingerprint(info)
    assert prefix_fingerprint(info) == base
    os_py = prefix / "lib/python3.11/os.py"
    os_py.write_text("# os, edited\n")
    edited = prefix_fingerprint(info)
    assert edited != base
    added = write(prefix / "lib/python3.11/added.py", "")
    assert prefix_fingerprint(info) not in (base, edited)
    added.unlink()
    assert prefix_fingerprint(info) == edited
    _touch_later(os_py)  # same size, new mtime
    assert prefix_fingerprint(info) != edited
    # what the import does not keep does not matter
    write(prefix / "lib/python3.11/test/test_new.py", "")
    key = prefix_fingerprint(info)
    write(prefix / "lib/python3.11/test/test_other.py", "")
    assert prefix_fingerprint(info) == key


def test_an_edited_prefix_is_imported_again(tmp_path: Path, fake_import: FakeImport) -> None:
    prefix = fake_prefix(tmp_path / "py")
    first = interpreter_from(prefix, cache_dir=tmp_path / "cache")
    (prefix / "lib/python3.11/os.py").write_text("# os, edited\n")
    again = interpreter_from(prefix, cache_dir=tmp_path / "cache")
    assert fake_import.calls == 2 and again.sha256 != first.sha256
