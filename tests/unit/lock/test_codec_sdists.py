"""Source distributions in the lock: round trip, and the lock refuses what it cannot vouch for."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from factories import make_lock

from builder.errors import BuilderError
from builder.lock.codec import read_lock, write_lock
from builder.lock.model import Lock, LockedPackage, SdistLock

SDIST = LockedPackage(name="demo", version="1.0", filename="demo-1.0.tar.gz", sha256="d" * 64,
                      via=("-r recipe",), url="https://files.example/demo-1.0.tar.gz")
SETUPTOOLS = LockedPackage(name="setuptools", version="80.0",
                           filename="setuptools-80.0-py3-none-any.whl",
                           sha256="e" * 64, via=("-r recipe",))


def with_sdist() -> Lock:
    lock = make_lock("sha256:x")
    targets = tuple(dataclasses.replace(t, packages=(*t.packages, SDIST)) for t in lock.targets)
    entry = SdistLock(name="demo", version="1.0", filename=SDIST.filename, url=SDIST.url or "",
                      sha256=SDIST.sha256, backend="setuptools.build_meta", backend_path=(),
                      requires=("setuptools>=61",),
                      build_deps=(("aarch64", (SETUPTOOLS,)), ("x86_64", (SETUPTOOLS,))))
    return dataclasses.replace(lock, targets=targets, sdists=(entry,))


def test_sdists_round_trip_byte_stable(tmp_path: Path) -> None:
    lock = with_sdist()
    write_lock(lock, tmp_path, refresh_command="builder lock r")
    assert read_lock(tmp_path, refresh_command="r") == lock
    data = json.loads((tmp_path / "lock.json").read_text())
    assert data["sdists"]["demo-1.0.tar.gz"]["build_deps"]["x86_64"][0]["name"] == "setuptools"
    packages = {p["name"]: p for p in data["targets"]["x86_64-unknown-linux-gnu"]["packages"]}
    assert packages["demo"]["url"] == "https://files.example/demo-1.0.tar.gz"
    assert "url" not in packages["pyjokes"]  # wheels are fetched by pip, by name and hash
    assert lock.sdist("demo-1.0.tar.gz") is lock.sdists[0]
    assert lock.sdists[0].deps_for("x86_64") == (SETUPTOOLS,)
    assert lock.sdists[0].deps_for("riscv64") is None


def test_locks_without_sdists_have_no_key(tmp_path: Path) -> None:
    write_lock(make_lock("sha256:x"), tmp_path, refresh_command="r")
    assert "sdists" not in json.loads((tmp_path / "lock.json").read_text())


def _edit(tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    write_lock(with_sdist(), tmp_path, refresh_command="r")
    path = tmp_path / "lock.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("sdists"),
         "targets.aarch64-unknown-linux-gnu: demo-1.0.tar.gz is a source distribution without "
         "an entry in sdists"),
        (lambda d: d["sdists"].update({"../../x.tar.gz": d["sdists"].pop("demo-1.0.tar.gz")}),
         "sdists: '../../x.tar.gz' is not a source distribution's file name"),
        (lambda d: d["sdists"]["demo-1.0.tar.gz"].update(backend_path=["../.."]),
         "sdists.demo-1.0.tar.gz.backend_path '../..' must be a relative path inside the "
         "source tree"),
        (lambda d: d["sdists"]["demo-1.0.tar.gz"].update(url="file:///x y.tar.gz"),
         "sdists.demo-1.0.tar.gz.url 'file:///x y.tar.gz' must not contain spaces"),
        (lambda d: d["sdists"]["demo-1.0.tar.gz"].pop("backend"),
         "missing sdists.demo-1.0.tar.gz.backend"),
        (lambda d: d["sdists"]["demo-1.0.tar.gz"]["build_deps"].update({"x86_64": "x"}),
         "sdists.demo-1.0.tar.gz.build_deps.x86_64.packages[].name"),
    ],
)
def test_a_broken_sdist_entry_is_refused(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    _edit(tmp_path, change)
    with pytest.raises(BuilderError) as info:
        read_lock(tmp_path, refresh_command="builder lock r")
    assert expected in info.value.what
    assert info.value.what.startswith("malformed lock file: ")
