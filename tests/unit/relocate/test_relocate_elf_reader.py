"""The real ``ElfReader``: pyelftools on the offline CPython, ``None`` for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from relocate_factories import real_python311

from builder.errors import BuilderError
from builder.host import HOST_ARCH
from builder.relocate import PyelftoolsReader

REAL = real_python311()


@pytest.mark.skipif(REAL is None, reason="needs `pyenv prefix 3.11.7`")
def test_a_real_interpreter_is_read(tmp_path: Path) -> None:
    assert REAL is not None
    info = PyelftoolsReader().read(REAL.resolve())
    assert info is not None
    assert info.arch == HOST_ARCH
    assert "libc.so.6" in info.needed


def test_files_that_are_not_elf_are_none(tmp_path: Path) -> None:
    (tmp_path / "script").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "empty").write_bytes(b"")
    reader = PyelftoolsReader()
    assert reader.read(tmp_path / "script") is None
    assert reader.read(tmp_path / "empty") is None
    assert reader.read(tmp_path / "missing") is None


def test_a_corrupt_elf_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.so").write_bytes(b"\x7fELF" + b"\x00" * 8)
    with pytest.raises(BuilderError, match="cannot read ELF file"):
        PyelftoolsReader().read(tmp_path / "bad.so")
