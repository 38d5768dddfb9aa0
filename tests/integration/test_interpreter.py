"""The interpreter stage with real parts: a loopback HTTP mirror, a real CPython import.

The import uses pyenv's CPython 3.11.7 (skipped cleanly when it is not installed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from factories import RELEASE, TRIPLE, fake_mirror, fake_pbs_archive, killed_claim, sha256_of
from servers import Mirror, pyenv_prefix

from builder import __version__
from builder.cpython import import_runtime
from builder.cpython.vendor import unresolved_needs
from builder.elf import is_elf, read_elf
from builder.errors import HashMismatchError
from builder.fetch.interpreter import (
    InterpreterSource,
    cache_path,
    extract_interpreter,
    fetch_interpreter,
    interpreter_from,
)
from builder.locking.pbs import resolve_pin
from builder.net import NetworkError

pytestmark = pytest.mark.integration

def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/pbs"


def test_resolve_and_fetch_over_http(mirror: Mirror, tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src", version="3.11.9")
    fake_mirror(mirror.root, [archive])
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=mirror.url, table=())
    assert (pin.python_version, pin.sha256, pin.size) == (
        "3.11.9", sha256_of(archive), archive.stat().st_size)
    assert pin.url.startswith("https://github.com/astral-sh/python-build-standalone/")

    cache = tmp_path / "cache"
    got = fetch_interpreter(pin, cache_dir=cache, mirror=mirror.url, progress=False)
    assert got == cache_path(pin, cache)
    assert got.read_bytes() == archive.read_bytes()
    quoted = "/pbs/20240107/cpython-3.11.9%2B20240107-x86_64-unknown-linux-gnu-install_only.tar.gz"
    assert mirror.requests == [
        ("GET", "/pbs/20240107/SHA256SUMS", f"builder/{__version__}"),
        ("HEAD", quoted, f"builder/{__version__}"),
        ("GET", quoted, f"builder/{__version__}"),
    ]
    # a hit is served from the cache, without a request
    assert fetch_interpreter(pin, cache_dir=cache, mirror=mirror.url, progress=False) == got
    assert len(mirror.requests) == 3


def test_tampered_http_mirror_caches_nothing(mirror: Mirror, tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    fake_mirror(mirror.root, [archive])
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=mirror.url, table=())
    (mirror.root / RELEASE / archive.name).write_bytes(b"evil" * 1000)
    with pytest.raises(HashMismatchError) as info:
        fetch_interpreter(pin, cache_dir=tmp_path / "cache", mirror=mirror.url, progress=False)
    assert info.value.expected == pin.sha256
    assert not (tmp_path / "cache" / "pbs" / pin.sha256).exists()


def test_missing_asset_on_http_mirror(mirror: Mirror, tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    fake_mirror(mirror.root, [archive])
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=mirror.url, table=())
    (mirror.root / RELEASE / archive.name).unlink()
    with pytest.raises(NetworkError) as info:
        fetch_interpreter(pin, cache_dir=tmp_path / "cache", mirror=mirror.url, progress=False)
    assert info.value.missing
    assert "HTTP 404" in info.value.what


def test_unreachable_mirror(tmp_path: Path) -> None:
    url = closed_port_url()
    # resolution falls back to the builtin table ...
    pin = resolve_pin(python_minor="3.11", release="20240107", triple=TRIPLE,
                      flavor="install_only", mirror=url)
    assert pin.sha256 == "4a51ce60007a6facf64e5495f4cf322e311ba9f39a8cd3f3e4c026eae488e140"
    # ... but the download cannot, and says what to do
    with pytest.raises(NetworkError) as info:
        fetch_interpreter(pin, cache_dir=tmp_path / "cache", mirror=url, progress=False)
    text = str(info.value)
    assert text.startswith(f"{url}/20240107/cpython-3.11.7%2B20240107-x86_64-unknown-linux-gnu-"
                           "install_only.tar.gz: cannot download the Python interpreter")
    assert "BUILDER_PBS_MIRROR" in text
    assert "--python-from ARCHIVE|PREFIX" in text and "builder runtime import" in text
    assert not (tmp_path / "cache" / "pbs").exists() or not any(
        (tmp_path / "cache" / "pbs").iterdir())


# -- runtime import of a real CPython ------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    prefix: Path
    source: InterpreterSource
    cache: Path


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    prefix = pyenv_prefix("3.11.7")
    if prefix is None or not (prefix / "bin" / "python3.11").exists():
        pytest.skip("pyenv CPython 3.11.7 is not installed")
    cache = tmp_path_factory.mktemp("cache")
    source = interpreter_from(prefix, cache_dir=cache)
    return Imported(prefix=prefix, source=source, cache=cache)


def test_import_facts_and_speed(imported: Imported) -> None:
    source = imported.source
    assert (source.python_version, source.triple, source.origin) == (
        "3.11.7", "x86_64-unknown-linux-gnu", "imported")
    assert source.archive.name == (
        "cpython-3.11.7+imported-x86_64-unknown-linux-gnu-install_only.tar.gz")
    assert source.sha256 == sha256_of(source.archive)
    # an unchanged prefix is not imported again: the cached archive is the same file, untouched
    before = source.archive.stat()
    again = interpreter_from(imported.prefix, cache_dir=imported.cache)
    assert again == source
    after = source.archive.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_import_is_reproducible(imported: Imported, tmp_path: Path) -> None:
    # and an import killed with SIGKILL in the same directory left its scratch: collected
    left = killed_claim(tmp_path / "other out", prefix=".import-")
    second = import_runtime(imported.prefix, tmp_path / "other out")
    assert second.sha256 == imported.source.sha256
    assert second.path.read_bytes() == imported.source.archive.read_bytes()
    assert not left.exists()
    assert [p.name for p in (tmp_path / "other out").iterdir()] == [second.path.name]


@pytest.fixture(scope="module")
def extracted(imported: Imported, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Extracted into a directory with a space, then the directory renamed (relocation)."""
    base = tmp_path_factory.mktemp("ex") / "dir with space"
    extract_interpreter(imported.source.archive, base / "first")
    moved = base / "moved here"
    (base / "first").rename(moved)
    return moved / "python"


PROBE = """
import ssl, sqlite3, ctypes, json, zlib, lzma, bz2, hashlib, uuid, sys
print(ssl.OPENSSL_VERSION)
maps = open("/proc/self/maps").read().split("\\n")
wanted = ("libssl", "libcrypto", "libsqlite3", "libffi", "libz.so")
libs = sorted({line.split(maxsplit=5)[-1] for line in maps if any(n in line for n in wanted)})
print(json.dumps({"prefix": sys.prefix, "libs": libs}))
"""


def test_imported_interpreter_runs_relocated(extracted: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run([str(extracted / "bin" / "python3"), "-c", PROBE], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().split("\n")
    assert first.startswith("OpenSSL ")
    facts = json.loads(second)
    assert facts["prefix"] == str(extracted)
    assert len(facts["libs"]) == 5
    assert all(lib.startswith(str(extracted / "lib") + "/") for lib in facts["libs"]), facts
    # pip's relocatable script runs with the tree's own interpreter
    pip = subprocess.run([str(extracted / "bin" / "pip3"), "--version"], env=env,
                         capture_output=True, text=True, check=False, timeout=60)
    assert pip.returncode == 0, pip.stderr
    assert str(extracted) in pip.stdout


def test_imported_tree_is_self_contained(imported: Imported, extracted: Path) -> None:
    root = extracted.parent
    elves = {}
    for path in sorted(extracted.rglob("*")):
        if path.is_file() and not path.is_symlink() and is_elf(path):
            info = read_elf(path)
            if info.elf_type in ("ET_DYN", "ET_EXEC") and info.needed:
                elves[path.relative_to(root).as_posix()] = info
    libdir = extracted / "lib"
    assert unresolved_needs(elves, libdir="python/lib",
                            provided=[p.name for p in libdir.iterdir()]) == {}
    for rel, info in elves.items():
        assert info.runpath == (), rel
        assert all(entry.startswith("$ORIGIN") for entry in info.rpath), (rel, info.rpath)
    meta = json.loads((extracted / "PYTHON.json").read_text())
    assert meta["python_version"] == "3.11.7"
    assert meta["python_exe"] == "install/bin/python3.11"
    vendored = [lib["name"] for lib in meta["builder_import"]["vendored_libraries"]]
    assert {"libssl.so.3", "libcrypto.so.3", "libsqlite3.so.0", "libffi.so.8"} <= set(vendored)
    assert all((libdir / name).is_file() for name in vendored)
    assert not any(name.startswith(("libc.so", "libm.so", "ld-linux")) for name in vendored)
    # no host prefix in any text file; what was left out stays out
    needle = str(imported.prefix).encode()
    leaks = [p for p in extracted.rglob("*") if p.is_file() and not p.is_symlink()
             and not is_elf(p) and needle in p.read_bytes()]
    assert leaks == []
    with tarfile.open(imported.source.archive) as tar:
        names = tar.getnames()
    assert not [n for n in names if "__pycache__" in n]
    assert "python/lib/python3.11/test" not in names
    assert "python/lib/python3.11/os.py" in names
    site = sorted(p.name for p in (extracted / "lib/python3.11/site-packages").iterdir())
    assert site[:2] == ["README.txt", "pip"]
    assert len(site) == 3 and site[2].startswith("pip-") and site[2].endswith(".dist-info")
    assert os.readlink(extracted / "bin/python3") == "python3.11"


def test_a_tampered_cached_import_is_imported_again(imported: Imported, tmp_path: Path) -> None:
    """The real cache of a real prefix: an archive changed after it was made is not used."""
    cache = tmp_path / "cache"
    shutil.copytree(imported.cache, cache)
    archive = cache / imported.source.archive.relative_to(imported.cache)
    with archive.open("ab") as fh:
        fh.write(b"\0" * 512)  # e.g. another member appended
    messages: list[str] = []
    again = interpreter_from(imported.prefix, cache_dir=cache, log=messages.append)
    assert [m.split(" (recorded")[0] for m in messages] == [
        f"warning: the cached import {archive} does not have the sha256 recorded when it was "
        "made"]
    assert again.sha256 == imported.source.sha256 == sha256_of(again.archive)
