"""Fixtures shared by the unit tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's recipes and locks as the working directory, with a cache of
    its own and no PBS mirror: the CLI run in-process as a user would from a checkout."""
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    shutil.copytree(ROOT / "lockfiles", tmp_path / "lockfiles")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BUILDER_PBS_MIRROR", raising=False)
    return tmp_path
