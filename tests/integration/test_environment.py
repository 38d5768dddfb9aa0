"""The CLI against a hostile environment on real file systems: read-only mounts for --out, the
cache and the agent's store, a full disk. One message each (what, where, what to do), exit 1,
no traceback, nothing half-written; directories are checked before any work starts."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from builder_run import ROOT, run_builder

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def tmpfs(path: Path, *options: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only), unmounted at exit."""
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join(("size=256k", *options))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def _fill(directory: Path) -> None:
    """Take every free byte of the file system holding ``directory``."""
    with (directory / "filler").open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _refused(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    return proc.stderr


def test_read_only_out_and_cache_are_refused_before_any_work(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro") as ro:
        out = _refused(run_builder("build", "recipes/tiny.toml", "--out", str(ro / "dist"),
                                   cache=tmp_path / "cache"))
        assert out == (f"error: {ro / 'dist'}: cannot create the output directory: Read-only "
                       "file system\n  hint: pass a writable directory with --out (default: "
                       "dist/)\n")
        assert not (tmp_path / "cache").exists()  # nothing fetched or imported first
        cache = _refused(run_builder("build", "recipes/tiny.toml", "--out",
                                     str(tmp_path / "dist"), cache=ro / "cache"))
        assert cache.startswith(f"error: {ro / 'cache'}: cannot create the cache directory: "
                                "Read-only file system\n")


def test_a_full_disk_is_one_message_and_nothing_half_written(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full") as full:
        lock_dir = full / "tiny"
        shutil.copytree(ROOT / "lockfiles" / "tiny", lock_dir)
        before = {p.name: p.read_bytes() for p in lock_dir.iterdir()}
        (lock_dir / "lock.json").write_bytes(before["lock.json"].replace(b'"format_version": 2',
                                                                         b'"format_version": 1'))
        _fill(full)
        err = _refused(run_builder("lock", "recipes/tiny.toml", "--upgrade", "--lock-dir",
                                   str(lock_dir), cache=tmp_path / "cache"))
        assert ": No space left on device\n  hint: free some space on that file system" in err
        assert sorted(p.name for p in lock_dir.iterdir()) == sorted(before)  # no temp files


def test_a_read_only_or_file_store_is_one_message(tmp_path: Path) -> None:
    """The store is created when the bundle is installed (the bytes are checked first: any
    file with its --sha256 gets that far)."""
    (tmp_path / "store-file").write_text("")
    bundle = tmp_path / "b.tar.zst"
    bundle.write_bytes(b"not really a bundle")
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    err = _refused(run_builder("agent", "install", "--store", str(tmp_path / "store-file"),
                               "--sha256", digest, str(bundle), cache=tmp_path / "cache"))
    assert err == (f"error: {tmp_path / 'store-file' / 'entries'}: Not a directory\n  hint: a "
                   "file is where a directory is expected: move it away or choose another "
                   "location\n")
    with tmpfs(tmp_path / "ro", "ro") as ro:
        err = _refused(run_builder("agent", "install", "--store", str(ro / "store"),
                                   "--sha256", digest, str(bundle), cache=tmp_path / "cache"))
        assert err == (f"error: {ro / 'store'}: Read-only file system\n  hint: the file system "
                       "is mounted read-only: choose another location\n")


def test_runtime_import_into_a_full_disk(tmp_path: Path) -> None:
    from servers import pyenv_prefix

    prefix = pyenv_prefix("3.11.7")
    if prefix is None:
        pytest.skip("pyenv CPython 3.11.7 is not installed")
    with tmpfs(tmp_path / "full") as full:
        err = _refused(run_builder("runtime", "import", str(prefix), "--out", str(full / "out"),
                                   cache=tmp_path / "cache"))
        assert "cannot copy the installation: No space left on device" in err
        assert "hint: free some space on that file system" in err
        assert os.listdir(full / "out") == []  # the staging directory is gone
