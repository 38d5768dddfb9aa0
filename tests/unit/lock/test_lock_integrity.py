"""Locks carry their own integrity: a digest over their content, fields checked before any is
used as a path or URL, ``.txt`` files that must say what lock.json says, old formats refused
with the offline upgrade command."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from factories import make_lock

from builder.cli.main import main
from builder.errors import BuilderError
from builder.lock.codec import content_digest, read_lock, seal, write_lock
from builder.lock.model import LOCK_FORMAT_VERSION
from builder.locking.api import load_fresh_lock, upgrade_lock
from builder.recipe import parse_recipe_text

ROOT = Path(__file__).resolve().parents[3]
X86 = "x86_64-unknown-linux-gnu"
ARM = "aarch64-unknown-linux-gnu"

Change = Callable[[dict[str, Any]], None]


def _written(tmp_path: Path) -> Path:
    write_lock(make_lock("sha256:x"), tmp_path, refresh_command="builder lock r")
    return tmp_path / "lock.json"


def _edit(path: Path, change: Change, *, reseal: bool) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(seal(data) if reseal else data))


def _package(data: dict[str, Any], index: int = 0) -> dict[str, Any]:
    package: dict[str, Any] = data["targets"][X86]["packages"][index]
    return package


def test_the_written_lock_carries_its_digest(tmp_path: Path) -> None:
    data = json.loads(_written(tmp_path).read_text())
    assert data["format_version"] == LOCK_FORMAT_VERSION == 2
    assert data["digest"].startswith("sha256:") and data["digest"] == content_digest(data)


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: _package(d).update(version="0.8.4"), id="version"),
    pytest.param(lambda d: _package(d).update(sha256="e" * 64), id="hash"),
    pytest.param(lambda d: d["targets"][X86]["packages"].pop(0), id="removed-package"),
    pytest.param(lambda d: d["targets"][X86]["interpreter"].update(sha256="f" * 64),
                 id="interpreter-hash"),
    pytest.param(lambda d: d.pop("digest"), id="digest-removed"),
    pytest.param(lambda d: d.update(digest="sha256:" + "0" * 64), id="digest-replaced"),
])
def test_an_edited_lock_is_refused(tmp_path: Path, change: Change) -> None:
    path = _written(tmp_path)
    _edit(path, change, reseal=False)
    with pytest.raises(BuilderError) as info:
        read_lock(tmp_path, refresh_command="builder lock r")
    assert info.value.what.startswith(
        "lock.json was changed after builder wrote it: its integrity digest does not match")
    assert info.value.hint == "restore it (git checkout) or regenerate it with: builder lock r"


def test_a_txt_edited_together_with_its_recorded_hash_is_still_refused(tmp_path: Path) -> None:
    """The .txt must say what lock.json says, not only hash to what lock.json records."""
    path = _written(tmp_path)
    txt = tmp_path / f"{X86}.txt"
    txt.write_text(txt.read_text().replace("zz==1 ", "zz==2 "))
    from builder.fsutil import sha256_bytes

    _edit(path, lambda d: d["targets"][X86]["requirements"].update(
        sha256=sha256_bytes(txt.read_bytes())), reseal=True)
    with pytest.raises(BuilderError, match=r"does not match lock\.json \(edited by hand\?\)"):
        read_lock(tmp_path, refresh_command="builder lock r")


def test_another_refresh_command_in_the_txt_comments_is_fine(tmp_path: Path) -> None:
    path = _written(tmp_path)
    assert read_lock(tmp_path, refresh_command="builder lock elsewhere/r.toml") is not None
    assert path.is_file()


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: _package(d).update(filename="../../../../../etc/passwd"),
     f"targets.{X86}.packages[].filename '../../../../../etc/passwd' must be a plain file name"),
    (lambda d: _package(d).update(filename=".pyjokes-0.8.3-py3-none-any.whl"),
     "must not start with a dot"),
    (lambda d: _package(d).update(filename="other-0.8.3-py3-none-any.whl"),
     "names the project 'other', not 'pyjokes'"),
    (lambda d: _package(d).update(filename="pyjokes.whl"),
     "is not a wheel or source distribution file name"),
    (lambda d: _package(d).update(filename="pyjokes-0.8.3.exe"),
     "is not a wheel or source distribution file name"),
    (lambda d: _package(d).update(sha256="g" * 64), "is not a sha256 digest"),
    (lambda d: _package(d).update(name="../x"), "must be a plain file name"),
    (lambda d: _package(d).update(name="PyJokes"), "is not a canonical (PEP 503) project name"),
    (lambda d: _package(d).update(version="1/../2"), "must be a plain file name"),
    (lambda d: _package(d).update(url="javascript:alert(1)"), "must be a https, http, file URL"),
    (lambda d: _package(d).update(url="https:///nohost"), "has no host"),
    (lambda d: d["targets"].update({"../../x-y-z": d["targets"].pop(X86)}),
     "targets: '../../x-y-z' must be a plain file name"),
    (lambda d: d["targets"].update({"x86 64-unknown-linux-gnu": d["targets"].pop(X86)}),
     "is not a target triple"),
    (lambda d: d["targets"][X86]["interpreter"].update(filename="../../x.tar.gz"),
     "interpreter.filename '../../x.tar.gz' must be a plain file name"),
    (lambda d: d["targets"][X86]["interpreter"].update(filename="python.exe"),
     "is not a python-build-standalone archive name"),
    (lambda d: d["targets"][X86]["interpreter"].update(release=".."),
     "interpreter.release '..' must not start with a dot"),
    (lambda d: d["targets"][X86]["interpreter"].update(sha256="A" * 64),
     "is not a sha256 digest"),
    (lambda d: d["targets"][X86]["interpreter"].update(url="ftp://host/x"),
     "must be a https, http, file URL"),
    (lambda d: d["targets"][X86]["interpreter"].update(triple=ARM),
     f"interpreter.triple '{ARM}' is not the target '{X86}'"),
    (lambda d: _package(d).update(via=["a\n--index-url https://evil.example/simple"]),
     "via 'a\\n--index-url https://evil.example/simple' must not contain control characters"),
    (lambda d: d["targets"][X86].update(platform_tags=["x --index-url=y"]),
     "platform_tags 'x --index-url=y' is not a platform tag"),
    (lambda d: d["targets"][X86]["requirements"].update(file="../../../etc/passwd"),
     f"requirements.file is '../../../etc/passwd', expected '{X86}.txt'"),
])
def test_fields_used_as_paths_are_checked(tmp_path: Path, change: Change, expected: str) -> None:
    path = _written(tmp_path)
    _edit(path, change, reseal=True)  # a consistent digest: only the field check refuses it
    with pytest.raises(BuilderError) as info:
        read_lock(tmp_path, refresh_command="builder lock r")
    assert info.value.what.startswith("malformed lock file: ")
    assert expected in info.value.what


def test_a_traversing_filename_is_refused_before_any_file_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _written(tmp_path)
    _edit(path, lambda d: _package(d).update(filename="../../../../../etc/passwd"), reseal=True)
    opened: list[str] = []
    real = Path.read_bytes

    def spy(self: Path) -> bytes:
        opened.append(str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    with pytest.raises(BuilderError, match="must be a plain file name"):
        read_lock(tmp_path, refresh_command="builder lock r")
    assert opened == []  # not even the .txt files, let alone /etc/passwd


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["node"]["toolchain"].update({"../x": d["node"]["toolchain"].pop("x86_64")}),
     "node: '../x' must be a plain file name"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].update(filename="../../etc/x.deb"),
     "build_headers.x86_64[].filename '../../etc/x.deb' must be a plain file name"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].update(filename="x.tar"),
     "is not a Debian package file name"),
])
def test_node_fields_used_as_paths_are_checked(tmp_path: Path, change: Change,
                                               expected: str) -> None:
    from dataclasses import replace

    from builder.lock.model import DebPin, LockedPackage, NodeAppLock

    zig = LockedPackage(name="ziglang", version="0.17.1",
                        filename="ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.whl",
                        sha256="a" * 64, via=("-r recipe",))
    deb = DebPin(package="libkrb5-dev", version="1.20.1-2+deb12u5",
                 filename="libkrb5-dev_1.20.1-2+deb12u5_amd64.deb",
                 url="https://deb.debian.org/x.deb", size=1, sha256="c" * 64)
    node = NodeAppLock(requirement="code-server@4.1.0", npm_lock="sha256:" + "d" * 64,
                       toolchain=(("x86_64", zig),), build_headers=(("x86_64", (deb,)),))
    write_lock(replace(make_lock("sha256:x"), node=node), tmp_path, refresh_command="r")
    _edit(tmp_path / "lock.json", change, reseal=True)
    with pytest.raises(BuilderError) as info:
        read_lock(tmp_path, refresh_command="r")
    assert expected in info.value.what


def _format_1(path: Path) -> None:
    _edit(path, lambda d: (d.pop("digest"), d.update(format_version=1)), reseal=False)


def test_a_format_1_lock_is_refused_with_the_upgrade_command(tmp_path: Path) -> None:
    _format_1(_written(tmp_path))
    with pytest.raises(BuilderError) as info:
        read_lock(tmp_path, refresh_command="builder lock recipes/tiny.toml")
    assert info.value.what == ("lock format_version 1 predates integrity digests (this builder "
                               "reads format 2)")
    assert info.value.hint == ("upgrade it offline, keeping every pin: builder lock "
                               "recipes/tiny.toml --upgrade (or re-resolve it: builder lock "
                               "recipes/tiny.toml)")
    assert read_lock(tmp_path, refresh_command="r", upgrade=True) == make_lock("sha256:x")


def test_upgrade_rewrites_a_fresh_format_1_lock_offline(tmp_path: Path) -> None:
    recipe_path = tmp_path / "recipes" / "tiny.toml"
    recipe_path.parent.mkdir()
    shutil.copy(ROOT / "recipes" / "tiny.toml", recipe_path)
    shutil.copytree(ROOT / "lockfiles" / "tiny", tmp_path / "lockfiles" / "tiny")
    recipe = parse_recipe_text(recipe_path.read_text(), path=str(recipe_path))
    lock_dir = tmp_path / "lockfiles" / "tiny"
    before = {p.name: p.read_bytes() for p in lock_dir.iterdir()}
    _format_1(lock_dir / "lock.json")
    with pytest.raises(BuilderError, match="predates integrity digests"):
        load_fresh_lock(recipe, lock_dir=lock_dir)
    upgrade_lock(recipe, lock_dir=lock_dir)
    assert {p.name: p.read_bytes() for p in lock_dir.iterdir()} == before  # same pins, same txt


def test_upgrade_does_not_bless_an_edited_txt(tmp_path: Path) -> None:
    path = _written(tmp_path)
    _format_1(path)
    txt = tmp_path / f"{X86}.txt"
    txt.write_text(txt.read_text().replace("zz==1 ", "zz==2 "))
    with pytest.raises(BuilderError, match=r"does not match lock\.json"):
        read_lock(tmp_path, refresh_command="r", upgrade=True)


def test_cli_a_tampered_lock_fails_build_and_check(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = project / "lockfiles" / "tiny" / "lock.json"
    lock.write_text(lock.read_text().replace('"version": "0.8.3"', '"version": "0.8.2"'))
    assert main(["lock", "recipes/tiny.toml", "--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {lock}: lock.json was changed after builder wrote it")
    assert "Traceback" not in err
    assert main(["build", "recipes/tiny.toml", "--out", str(project / "dist")]) == 1
    assert "integrity digest does not match" in capsys.readouterr().err
    assert not (project / "dist").exists() and not (project / "cache").exists()


def test_cli_a_traversing_filename_is_refused_before_anything_is_fetched(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = project / "lockfiles" / "tiny" / "lock.json"
    _edit(lock, lambda d: _package(d).update(filename="../../../../../etc/passwd"), reseal=True)
    assert main(["build", "recipes/tiny.toml", "--out", str(project / "dist")]) == 1
    err = capsys.readouterr().err
    assert "'../../../../../etc/passwd' must be a plain file name" in err
    assert "hint: regenerate it with `builder lock RECIPE`" in err
    assert not (project / "cache").exists()


def test_cli_lock_upgrade(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = project / "lockfiles" / "tiny" / "lock.json"
    before = lock.read_bytes()
    _format_1(lock)
    assert main(["lock", "recipes/tiny.toml", "--check"]) == 1
    assert "builder lock recipes/tiny.toml --upgrade" in capsys.readouterr().err
    assert main(["lock", "recipes/tiny.toml", "--upgrade"]) == 0
    assert lock.read_bytes() == before
    assert main(["lock", "recipes/tiny.toml", "--check"]) == 0
