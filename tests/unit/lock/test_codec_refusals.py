"""The lock reader, message by message: each refusal names what is wrong, where (the file) and
what to do; a lock with every optional part (kernels' wheelhouses, a [node] app with build
headers, sdists with a backend path) round-trips; the field checks hold at their boundaries."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from factories import make_lock

from builder.errors import BuilderError
from builder.fsutil import sha256_bytes
from builder.lock import fields
from builder.lock.codec import MAX_LOCK_BYTES, read_lock, requirements_text, seal, write_lock
from builder.lock.model import (
    DebPin,
    Lock,
    LockedPackage,
    NodeAppLock,
    SdistLock,
    WheelhouseLock,
)

X86 = "x86_64-unknown-linux-gnu"
REFRESH = "builder lock r"
REGENERATE = "regenerate it with: builder lock r"
MALFORMED_HINT = "regenerate it with `builder lock RECIPE`"

Change = Callable[[dict[str, Any]], object]


def _refusal(directory: Path, *, upgrade: bool = False) -> BuilderError:
    with pytest.raises(BuilderError) as info:
        read_lock(directory, refresh_command=REFRESH, upgrade=upgrade)
    return info.value


def _edit(path: Path, change: Change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(seal(data)))


def _written(tmp_path: Path, lock: Lock | None = None) -> Path:
    write_lock(lock or make_lock("sha256:x"), tmp_path, refresh_command=REFRESH)
    return tmp_path / "lock.json"


@pytest.mark.parametrize(("content", "what", "hint"), [
    (None, "no lock found", "create it with: builder lock r"),
    ("dir", "cannot read lock: Is a directory", REGENERATE),
    (b"[]", "cannot read lock: not a JSON object", REGENERATE),
    (b'{"format_version": 3}', "unsupported lock format_version 3", REGENERATE),
    (b'{"format_version": true}', "malformed lock file: format_version must be int",
     MALFORMED_HINT),
    (b'{"format_version": "2"}', "malformed lock file: format_version must be int",
     MALFORMED_HINT),
    (b"{}", "malformed lock file: missing format_version", MALFORMED_HINT),
])
def test_an_unreadable_lock_is_refused_with_where_and_what_to_do(
        tmp_path: Path, content: bytes | str | None, what: str, hint: str) -> None:
    path = tmp_path / "lock.json"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    error = _refusal(tmp_path)
    assert (error.what, error.where, error.hint) == (what, str(path), hint)


def test_a_lock_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lock.json").write_bytes(b"{not json")
    error = _refusal(tmp_path)
    assert error.what.startswith("cannot read lock: Expecting property name")
    assert (error.where, error.hint) == (str(tmp_path / "lock.json"), REGENERATE)


def test_the_size_limit_is_exact(tmp_path: Path) -> None:
    """A lock of exactly the limit is read (and refused for its content, not its size); one
    byte more is refused unread."""
    path = tmp_path / "lock.json"
    path.write_bytes(b" " * (MAX_LOCK_BYTES - 2) + b"{}")
    assert _refusal(tmp_path).what == "malformed lock file: missing format_version"
    path.write_bytes(b" " * (MAX_LOCK_BYTES - 1) + b"{}")
    error = _refusal(tmp_path)
    assert (error.what, error.where, error.hint) == (
        "lock file larger than 64 MiB", str(path), REGENERATE)


def test_a_format_1_lock_names_the_file(tmp_path: Path) -> None:
    path = _written(tmp_path)
    data = json.loads(path.read_text())
    data.pop("digest")
    path.write_text(json.dumps({**data, "format_version": 1}))
    assert _refusal(tmp_path).where == str(path)


def _package(data: dict[str, Any]) -> dict[str, Any]:
    package: dict[str, Any] = data["targets"][X86]["packages"][0]
    return package


def _pin(data: dict[str, Any]) -> dict[str, Any]:
    pin: dict[str, Any] = data["targets"][X86]["interpreter"]
    return pin


AT = f"targets.{X86}."


@pytest.mark.parametrize(("change", "what"), [
    (lambda d: d.pop("recipe"), "missing recipe"),
    (lambda d: d["recipe"].pop("name"), "missing recipe.name"),
    (lambda d: d["recipe"].pop("lock_digest"), "missing recipe.lock_digest"),
    (lambda d: d.pop("python"), "missing python"),
    (lambda d: d.pop("glibc_floor"), "missing glibc_floor"),
    (lambda d: d.update(targets=[]), "targets must be dict"),
    (lambda d: d.update(node=[]), "node must be dict"),
    (lambda d: d.update(sdists=[]), "sdists must be dict"),
    (lambda d: d["targets"][X86].pop("interpreter"), f"missing {AT}interpreter"),
    (lambda d: d["targets"][X86].pop("packages"), f"missing {AT}packages"),
    (lambda d: d["targets"][X86].pop("platform_tags"), f"missing {AT}platform_tags"),
    (lambda d: d["targets"][X86].pop("requirements"), f"missing {AT}requirements"),
    (lambda d: d["targets"][X86].update(wheelhouse=[]), f"{AT}wheelhouse must be dict"),
    (lambda d: _pin(d).pop("python_version"), f"missing {AT}interpreter.python_version"),
    (lambda d: _pin(d).pop("triple"), f"missing {AT}interpreter.triple"),
    (lambda d: _pin(d).pop("flavor"), f"missing {AT}interpreter.flavor"),
    (lambda d: _pin(d).update(release="2024/01"),
     f"{AT}interpreter.release '2024/01' must be a plain file name (no directory part)"),
    (lambda d: _pin(d).update(release="2024 01"),
     f"{AT}interpreter.release '2024 01' is not a release tag"),
    (lambda d: _pin(d).update(url="ftp://h/x"),
     f"{AT}interpreter.url 'ftp://h/x' must be a https, http, file URL"),
    (lambda d: _pin(d).update(sha256="A" * 64),
     f"{AT}interpreter.sha256 '{'A' * 64}' is not a sha256 digest (64 lowercase hex digits)"),
    (lambda d: _package(d).update(version="1 0"),
     f"{AT}packages[].version '1 0' is not a version"),
    (lambda d: _package(d).update(sha256="b" * 63),
     f"{AT}packages[].sha256 '{'b' * 63}' is not a sha256 digest (64 lowercase hex digits)"),
    (lambda d: _package(d).update(url="ftp://h/x"),
     f"{AT}packages[].url 'ftp://h/x' must be a https, http, file URL"),
    (lambda d: _package(d).update(via="x"), f"{AT}packages[].via must be list"),
])
def test_a_malformed_field_is_named_with_its_path(tmp_path: Path, change: Change,
                                                  what: str) -> None:
    path = _written(tmp_path)
    _edit(path, change)
    error = _refusal(tmp_path)
    assert (error.what, error.where, error.hint) == (
        f"malformed lock file: {what}", str(path), MALFORMED_HINT)


# -- a lock with every optional part ----------------------------------------------------------

SETUPTOOLS = LockedPackage(name="setuptools", version="80.0",
                           filename="setuptools-80.0-py3-none-any.whl", sha256="e" * 64,
                           via=("-r recipe",))
SDIST = LockedPackage(name="demo", version="1.0", filename="demo-1.0.tar.gz", sha256="d" * 64,
                      via=("-r recipe",), url="https://files.example/demo-1.0.tar.gz")
KERNEL = LockedPackage(name="ipykernel", version="6.29.5",
                       filename="ipykernel-6.29.5-py3-none-any.whl", sha256="9" * 64,
                       via=("-r kernels",))
ZIG = LockedPackage(name="ziglang", version="0.17.1",
                    filename="ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.whl",
                    sha256="8" * 64, via=("-r recipe",))
DEB = DebPin(package="libkrb5-dev", version="1.20.1-2+deb12u5",
             filename="libkrb5-dev_1.20.1-2+deb12u5_amd64.deb",
             url="https://deb.debian.org/x.deb", size=7, sha256="7" * 64)


def full_lock() -> Lock:
    lock = make_lock("sha256:x")
    wheelhouse = (WheelhouseLock(python="3.9", python_version="3.9.18", packages=(KERNEL,)),
                  WheelhouseLock(python="3.10", python_version="3.10.13", packages=(KERNEL,)))
    targets = tuple(dataclasses.replace(t, packages=(*t.packages, SDIST), wheelhouse=wheelhouse)
                    for t in lock.targets)
    sdist = SdistLock(name="demo", version="1.0", filename=SDIST.filename, url=SDIST.url or "",
                      sha256=SDIST.sha256, backend="backend:__legacy__",
                      backend_path=("src", "tools/build"), requires=("setuptools>=61",),
                      build_deps=(("aarch64", (SETUPTOOLS,)), ("x86_64", (SETUPTOOLS,))))
    node = NodeAppLock(requirement="code-server@4.1.0", npm_lock="sha256:" + "6" * 64,
                       toolchain=(("x86_64", ZIG),), build_headers=(("x86_64", (DEB,)),))
    return dataclasses.replace(lock, targets=targets, sdists=(sdist,), node=node)


def test_a_lock_with_every_optional_part_round_trips(tmp_path: Path) -> None:
    lock = full_lock()
    path = _written(tmp_path, lock)
    assert read_lock(tmp_path, refresh_command="elsewhere") == lock
    data = json.loads(path.read_text())
    entry = data["targets"][X86]
    assert sorted(entry["wheelhouse"]) == ["3.10", "3.9"]
    for minor in ("3.9", "3.10"):
        name = f"{X86}-wheelhouse-py{minor}.txt"
        assert entry["wheelhouse"][minor]["requirements"] == {
            "file": name, "sha256": sha256_bytes((tmp_path / name).read_bytes())}
        assert entry["wheelhouse"][minor]["packages"][0]["name"] == "ipykernel"
    assert entry["wheelhouse"]["3.10"]["python_version"] == "3.10.13"
    assert entry["requirements"] == {
        "file": f"{X86}.txt", "sha256": sha256_bytes((tmp_path / f"{X86}.txt").read_bytes())}
    assert data["node"]["requirement"] == "code-server@4.1.0"
    assert data["node"]["npm_lock"] == "sha256:" + "6" * 64
    assert data["node"]["build_headers"]["x86_64"] == [{
        "package": "libkrb5-dev", "version": "1.20.1-2+deb12u5",
        "filename": "libkrb5-dev_1.20.1-2+deb12u5_amd64.deb",
        "url": "https://deb.debian.org/x.deb", "size": 7, "sha256": "7" * 64}]
    assert data["sdists"]["demo-1.0.tar.gz"]["backend_path"] == ["src", "tools/build"]
    wheelhouse_txt = (tmp_path / f"{X86}-wheelhouse-py3.10.txt").read_text()
    assert wheelhouse_txt.startswith(
        f"#\n# This file is generated by builder from recipe 'tiny' for target\n"
        f"# {X86}, the kernels' wheelhouse for an image's CPython 3.10 (glibc >= 2.17). "
        "Do not edit.\n# To refresh it, run: builder lock r\n#\n")
    assert "ipykernel==6.29.5 \\\n" in wheelhouse_txt


def test_requirements_text_of_a_target(tmp_path: Path) -> None:
    lock = make_lock("sha256:x")
    text = requirements_text(lock, lock.targets[1], refresh_command="builder lock r")
    assert text.startswith(
        "#\n# This file is generated by builder from recipe 'tiny' for target\n"
        f"# {X86} (CPython 3.11.7, glibc >= 2.17). Do not edit.\n"
        "# To refresh it, run: builder lock r\n#\npyjokes==0.8.3 \\\n")


@pytest.mark.parametrize(("change", "what"), [
    (lambda d: d["targets"][X86]["wheelhouse"].update(
        {"3.x": d["targets"][X86]["wheelhouse"].pop("3.9")}),
     f"{AT}wheelhouse: '3.x' is not a Python minor version"),
    (lambda d: d["targets"][X86]["wheelhouse"]["3.9"].pop("python_version"),
     f"missing {AT}wheelhouse.3.9.python_version"),
    (lambda d: d["targets"][X86]["wheelhouse"]["3.9"].pop("packages"),
     f"missing {AT}wheelhouse.3.9.packages"),
    (lambda d: d["targets"][X86]["wheelhouse"]["3.9"].pop("requirements"),
     f"missing {AT}wheelhouse.3.9.requirements"),
    (lambda d: d["targets"][X86]["wheelhouse"]["3.9"]["requirements"].update(file="x.txt"),
     f"{AT}wheelhouse.3.9.requirements.file is 'x.txt', expected "
     f"'{X86}-wheelhouse-py3.9.txt'"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].update(name="other"),
     "sdists: 'demo-1.0.tar.gz' names the project 'demo', not 'other'"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].pop("name"), "missing sdists.demo-1.0.tar.gz.name"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].pop("version"),
     "missing sdists.demo-1.0.tar.gz.version"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].pop("requires"),
     "missing sdists.demo-1.0.tar.gz.requires"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].pop("build_deps"),
     "missing sdists.demo-1.0.tar.gz.build_deps"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].update(sha256="x"),
     "sdists.demo-1.0.tar.gz.sha256 'x' is not a sha256 digest (64 lowercase hex digits)"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"]["build_deps"].update(
        {"x86 64": d["sdists"]["demo-1.0.tar.gz"]["build_deps"].pop("x86_64")}),
     "sdists.demo-1.0.tar.gz.build_deps: 'x86 64' is not an architecture name"),
    (lambda d: d["sdists"]["demo-1.0.tar.gz"]["build_deps"].update(x86_64=""),
     "missing sdists.demo-1.0.tar.gz.build_deps.x86_64.packages[].name"),
    (lambda d: d["node"]["toolchain"].update({"x 86": d["node"]["toolchain"].pop("x86_64")}),
     "node: 'x 86' is not an architecture name"),
    (lambda d: d["node"].update(build_headers={"x86_64": {}}),
     "node.build_headers.x86_64 must be list"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].update(package="../x"),
     "node.build_headers.x86_64[].package '../x' must be a plain file name (no directory "
     "part)"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].pop("version"),
     "missing node.build_headers.x86_64[].version"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].update(size="7"),
     "node.build_headers.x86_64[].size must be int"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].update(url="ftp://h/x"),
     "node.build_headers.x86_64[].url 'ftp://h/x' must be a https, http, file URL"),
    (lambda d: d["node"]["build_headers"]["x86_64"][0].update(sha256="x"),
     "node.build_headers.x86_64[].sha256 'x' is not a sha256 digest (64 lowercase hex digits)"),
    (lambda d: d["node"].pop("requirement"), "missing node.requirement"),
    (lambda d: d["node"].pop("npm_lock"), "missing node.npm_lock"),
    (lambda d: d["node"].pop("toolchain"), "missing node.toolchain"),
    (lambda d: d["node"]["toolchain"]["x86_64"].pop("name"),
     "missing node.toolchain.x86_64.packages[].name"),
])
def test_a_malformed_optional_part_is_named_with_its_path(tmp_path: Path, change: Change,
                                                          what: str) -> None:
    path = _written(tmp_path, full_lock())
    _edit(path, change)
    error = _refusal(tmp_path)
    assert (error.what, error.where, error.hint) == (
        f"malformed lock file: {what}", str(path), MALFORMED_HINT)


def test_wheelhouses_are_read_in_minor_order_with_a_non_number_last(tmp_path: Path) -> None:
    """A lock with two faults is refused for the same one whatever its key order: the
    wheelhouses are read by numeric minor (3.9 before 3.10), a minor that is no number last."""
    path = _written(tmp_path, full_lock())

    def two_faults(d: dict[str, Any]) -> None:
        wheelhouse = d["targets"][X86]["wheelhouse"]
        wheelhouse["3.x"] = wheelhouse.pop("3.9")  # sorts before "3.10" as a string
        del wheelhouse["3.10"]["python_version"]

    _edit(path, two_faults)
    assert _refusal(tmp_path).what == (
        f"malformed lock file: missing {AT}wheelhouse.3.10.python_version")
    _edit(path, lambda d: d["targets"][X86]["wheelhouse"].update(
        {"3.9": d["targets"][X86]["wheelhouse"].pop("3.x")}))
    _edit(path, lambda d: d["targets"][X86]["wheelhouse"]["3.9"].pop("packages"))
    assert _refusal(tmp_path).what == f"malformed lock file: missing {AT}wheelhouse.3.9.packages"


def test_an_interpreter_size_that_is_not_a_number_reads_as_unknown(tmp_path: Path) -> None:
    _edit(_written(tmp_path), lambda d: _pin(d).update(size="123"))
    lock = read_lock(tmp_path, refresh_command=REFRESH)
    target = lock.for_target(X86)
    assert target is not None and target.interpreter.size is None


# -- the .txt files ---------------------------------------------------------------------------


def test_a_missing_requirements_file_is_named(tmp_path: Path) -> None:
    _written(tmp_path, full_lock())
    txt = tmp_path / f"{X86}-wheelhouse-py3.10.txt"
    txt.unlink()
    error = _refusal(tmp_path)
    assert (error.what, error.where, error.hint) == (
        "requirements file of the lock is missing", str(txt),
        "regenerate the lock with: builder lock r")


def test_an_edited_wheelhouse_file_is_refused(tmp_path: Path) -> None:
    _written(tmp_path, full_lock())
    txt = tmp_path / f"{X86}-wheelhouse-py3.9.txt"
    txt.write_text(txt.read_text().replace("6.29.5", "6.29.4"))
    error = _refusal(tmp_path)
    assert (error.what, error.where, error.hint) == (
        "requirements file does not match lock.json (edited by hand?)", str(txt),
        "regenerate the lock with: builder lock r")


def _retxt(tmp_path: Path, new: bytes) -> None:
    """Write ``new`` as x86's .txt and record its sha256 (only the content check can tell)."""
    txt = tmp_path / f"{X86}.txt"
    txt.write_bytes(new)
    _edit(tmp_path / "lock.json", lambda d: d["targets"][X86]["requirements"].update(
        sha256=sha256_bytes(new)))


def test_a_requirements_file_of_invalid_utf8_is_refused_cleanly(tmp_path: Path) -> None:
    _written(tmp_path)
    _retxt(tmp_path, (tmp_path / f"{X86}.txt").read_bytes() + b"\xff\xfe\n")
    assert _refusal(tmp_path).what == (
        "requirements file does not match lock.json (edited by hand?)")


def test_an_edited_indented_comment_is_not_a_requirement(tmp_path: Path) -> None:
    """pip ignores ``    # via`` lines: editing one changes nothing pip installs."""
    _written(tmp_path)
    text = (tmp_path / f"{X86}.txt").read_bytes()
    assert b"    # via -r recipe\n" in text
    _retxt(tmp_path, text.replace(b"    # via -r recipe\n", b"    # via someone else\n"))
    assert read_lock(tmp_path, refresh_command=REFRESH) == make_lock("sha256:x")


# -- the field checks at their boundaries -----------------------------------------------------

CONTROL = "must not contain control characters"


@pytest.mark.parametrize(("check", "value", "reason"), [
    (fields.text, "x" * 1024, None),
    (fields.text, "x" * 1025, "is longer than 1024 characters"),
    (fields.text, "a\x7fb", "must not contain control characters (newlines)"),
    (fields.text, "a\x80b é", None),
    (fields.relative_path, "src/pkg", None),
    (fields.relative_path, "src\\..\\..\\x", "must be a relative path inside the source tree"),
    (fields.relative_path, "/abs", "must be a relative path inside the source tree"),
    (fields.relative_path, "", "must be a relative path inside the source tree"),
    (fields.relative_path, "a\nb", "must not contain control characters (newlines)"),
    (fields.plain_component, "x" * 255, None),
    (fields.plain_component, "x" * 256, "must be a file name of 1 to 255 characters"),
    (fields.plain_component, "", "must be a file name of 1 to 255 characters"),
    (fields.plain_component, "a\\b", "must be a plain file name (no directory part)"),
    (fields.plain_component, "a\x7f", CONTROL),
    (fields.plain_component, "a\x1f", CONTROL),
    (fields.plain_component, "a\x80", None),
    (fields.url, "file:///srv/x.tar.gz", None),
    (fields.url, "https://h/a!b", None),
    (fields.url, "https://h/\x80", None),
    (fields.url, "https://h/a\x7f", "must not contain spaces or control characters"),
    (fields.url, "https:///x", "has no host"),
    (fields.url, "FILE:///x", None),
])
def test_field_checks_at_their_boundaries(check: Callable[[str], str | None], value: str,
                                          reason: str | None) -> None:
    assert check(value) == reason


def test_optional_keys_are_written_only_when_used(tmp_path: Path) -> None:
    """Locks of recipes without kernels' wheelhouses, sdists, a [node] app or build headers have
    no such key (older builders read them unchanged)."""
    lock = make_lock("sha256:x")
    node = NodeAppLock(requirement="code-server@4.1.0", npm_lock="sha256:" + "6" * 64,
                       toolchain=(("x86_64", ZIG),), build_headers=())
    path = _written(tmp_path, dataclasses.replace(lock, node=node))
    data = json.loads(path.read_text())
    assert "wheelhouse" not in data["targets"][X86] and "sdists" not in data
    assert sorted(data["node"]) == ["npm_lock", "requirement", "toolchain"]
    assert read_lock(tmp_path, refresh_command=REFRESH).node == node
    _edit(path, lambda d: d["node"].update(build_headers=[]))
    assert _refusal(tmp_path).what == "malformed lock file: node.build_headers must be dict"


def test_without_requirement_hashes_the_entries_are_empty_strings() -> None:
    """The build plan digests ``lock_to_dict(lock, requirement_hashes={})``: a stable shape (a
    change here would change every bundle's input digest)."""
    from builder.lock.codec import lock_to_dict

    entry = lock_to_dict(full_lock(), requirement_hashes={})["targets"][X86]
    assert entry["requirements"] == {"file": f"{X86}.txt", "sha256": ""}
    assert entry["wheelhouse"]["3.9"]["requirements"] == {
        "file": f"{X86}-wheelhouse-py3.9.txt", "sha256": ""}


@pytest.mark.parametrize(("change", "what"), [
    (lambda d: d["sdists"]["demo-1.0.tar.gz"].update(backend_path="src"),
     "sdists.demo-1.0.tar.gz.backend_path must be list"),
    (lambda d: d["targets"][X86]["requirements"].update(file="x.txt"),
     f"{AT}requirements.file is 'x.txt', expected '{X86}.txt'"),
])
def test_more_fields_named_with_their_path(tmp_path: Path, change: Change, what: str) -> None:
    _edit(_written(tmp_path, full_lock()), change)
    assert _refusal(tmp_path).what == f"malformed lock file: {what}"
