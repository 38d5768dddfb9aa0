"""The pinned pip an import adds to an interpreter that has none."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from builder.cpython.pip import PIP_FILENAME, SOURCE_ENV, add_pip, fetch_pip_wheel
from builder.errors import BuilderError


def test_only_the_pinned_bytes_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    impostor = tmp_path / PIP_FILENAME
    with zipfile.ZipFile(impostor, "w") as archive:
        archive.writestr("pip/__init__.py", "evil = True\n")
    monkeypatch.setenv(SOURCE_ENV, str(impostor))
    with pytest.raises(BuilderError, match="sha256"):
        fetch_pip_wheel(tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.whl")), "nothing kept"


def test_the_wheel_is_unpacked_into_site_packages(tmp_path: Path) -> None:
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pip/__main__.py", "print('pip')\n")
        archive.writestr("pip-23.3.2.dist-info/RECORD", "")
    site = tmp_path / "site-packages"
    add_pip(wheel, site)
    assert (site / "pip/__main__.py").read_text() == "print('pip')\n"
    assert (site / "pip-23.3.2.dist-info/RECORD").is_file()


def test_unsafe_members_are_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("../escape.py", "")
    with pytest.raises(BuilderError, match="unsafe member"):
        add_pip(wheel, tmp_path / "site-packages")
    assert not (tmp_path / "escape.py").exists()
