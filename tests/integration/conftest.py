"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Mirror, pyenv_prefix, serve_mirror


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with serve_mirror(tmp_path) as served:
        yield served


ROOT = Path(__file__).resolve().parents[2]
PBS_RELEASE = "20240107"


@pytest.fixture(scope="session")
def builder_cache() -> Path:
    """A cache kept between runs (wheels, imported runtimes), like a user's ~/.cache/builder."""
    path = ROOT / ".cache" / "test-builder"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def runtime_archive(builder_cache: Path) -> Path:
    """pyenv's CPython 3.11.7 as a PBS-layout archive (made once, by `builder runtime import`)."""
    from builder.fetch.interpreter import interpreter_from

    prefix = pyenv_prefix("3.11.7")
    if prefix is None or not (prefix / "bin" / "python3.11").exists():
        pytest.skip("pyenv CPython 3.11.7 is not installed")
    return interpreter_from(prefix, cache_dir=builder_cache).archive
