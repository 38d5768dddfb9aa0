"""fetch_interpreter (cache), interpreter_from (archives) and safe extraction, offline."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from factories import (
    RELEASE,
    TRIPLE,
    Member,
    fake_mirror,
    fake_pbs_archive,
    fake_pbs_tree,
    pbs_filename,
    sha256_of,
    tar_tree,
    tar_with_members,
)

from builder.errors import BuilderError, HashMismatchError
from builder.fetch.interpreter import (
    cache_path,
    extract_interpreter,
    fetch_interpreter,
    inspect_archive,
    interpreter_from,
)
from builder.lock.model import InterpreterPin
from builder.locking.pbs import resolve_pin
from builder.net import NetTransport, NetworkError
from builder.tarsafe import UnsafeMemberError


def _pin(archive: Path, *, sha256: str | None = None) -> InterpreterPin:
    return InterpreterPin(
        release=RELEASE, python_version="3.11.7", triple=TRIPLE, flavor="install_only",
        filename=archive.name, url=f"https://example.invalid/{archive.name}",
        sha256=sha256 or sha256_of(archive), size=archive.stat().st_size,
    )


class Counting:
    """Wraps the real transport, counting downloads."""

    def __init__(self) -> None:
        self.sources: list[str] = []

    def fetch_to(self, source: str, dest: Path, *, expected_sha256: str | None, progress: bool,
                 what: str) -> str:
        self.sources.append(source)
        return NetTransport().fetch_to(source, dest, expected_sha256=expected_sha256,
                                       progress=progress, what=what)


class Unreachable:
    def fetch_to(self, source: str, dest: Path, *, expected_sha256: str | None, progress: bool,
                 what: str) -> str:
        raise NetworkError("cannot reach server: no route to host", where=source)


def test_fetch_from_directory_mirror_then_cache_hit(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    mirror = fake_mirror(tmp_path / "mirror", [archive])
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=str(mirror), table=())
    cache = tmp_path / "cache"
    transport = Counting()
    got = fetch_interpreter(pin, cache_dir=cache, mirror=str(mirror), progress=False,
                            transport=transport)
    assert got == cache / "pbs" / pin.sha256 / pin.filename == cache_path(pin, cache)
    assert sha256_of(got) == pin.sha256
    assert transport.sources == [str(mirror / RELEASE / pin.filename)]
    again = fetch_interpreter(pin, cache_dir=cache, mirror=None, progress=False,
                              transport=Unreachable())
    assert again == got


def test_damaged_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    pin = _pin(archive)
    cache = tmp_path / "cache"
    entry = cache_path(pin, cache)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"damaged")
    transport = Counting()
    fake_mirror(tmp_path / "m", [archive])
    got = fetch_interpreter(pin, cache_dir=cache, mirror=str(tmp_path / "m"), progress=False,
                            transport=transport)
    assert sha256_of(got) == pin.sha256
    assert len(transport.sources) == 1


def test_tampered_source_raises_and_caches_nothing(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    pin = _pin(archive)
    mirror = fake_mirror(tmp_path / "mirror", [archive])
    (mirror / RELEASE / archive.name).write_bytes(b"tampered bytes")
    cache = tmp_path / "cache"
    with pytest.raises(HashMismatchError) as info:
        fetch_interpreter(pin, cache_dir=cache, mirror=str(mirror), progress=False)
    assert info.value.expected == pin.sha256
    assert info.value.actual == sha256_of(mirror / RELEASE / archive.name)
    assert not (cache / "pbs" / pin.sha256).exists()


def test_unreachable_source_hint(tmp_path: Path) -> None:
    pin = _pin(fake_pbs_archive(tmp_path / "src"))
    with pytest.raises(NetworkError) as info:
        fetch_interpreter(pin, cache_dir=tmp_path / "cache", mirror=None, progress=False,
                          transport=Unreachable())
    assert info.value.where == pin.url
    assert f"cannot download the Python interpreter {pin.filename}" in info.value.what
    assert "BUILDER_PBS_MIRROR" in str(info.value.hint)
    assert "--python-from ARCHIVE|PREFIX" in str(info.value.hint)
    assert "builder runtime import" in str(info.value.hint)
    assert not (tmp_path / "cache" / "pbs" / pin.sha256).exists()


def test_interpreter_from_archive_with_python_json(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path, version="3.11.9", triple="aarch64-unknown-linux-gnu")
    source = interpreter_from(archive, cache_dir=tmp_path / "cache")
    assert source.archive == archive
    assert source.sha256 == sha256_of(archive)
    assert (source.python_version, source.triple, source.origin) == (
        "3.11.9", "aarch64-unknown-linux-gnu", "archive")


def test_inspect_without_python_json_uses_patchlevel_and_sysconfigdata(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path, version="3.12.1", python_json=False, name="any.tar.gz")
    facts = inspect_archive(archive)
    assert (facts.python_version, facts.triple) == ("3.12.1", TRIPLE)


def test_inspect_zst_archive(tmp_path: Path) -> None:
    fake_pbs_tree(tmp_path / "t")
    archive = tar_tree(tmp_path / "t", tmp_path / "x.tar.zst", compression="zst")
    assert inspect_archive(archive).python_version == "3.11.7"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([Member("bin/python3.11", b"x")], "member 'bin/python3.11' outside the top directory"),
        ([Member("python/lib/os.py", b"x")], "no python/bin/python3.X"),
        ([Member("python/install/bin/python3.11", b"x")], "a full (python/install/...) archive"),
        ([], "empty archive"),
    ],
)
def test_not_pbs_layout(tmp_path: Path, members: list[Member], message: str) -> None:
    archive = tar_with_members(tmp_path / "a.tar.gz", members)
    with pytest.raises(BuilderError) as info:
        interpreter_from(archive, cache_dir=tmp_path / "cache")
    assert "not a python-build-standalone install_only archive: " + message in str(info.value)
    assert "builder runtime import" in str(info.value.hint)


def test_interpreter_from_missing_path(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no such file or directory"):
        interpreter_from(tmp_path / "nope.tar.gz", cache_dir=tmp_path)


def test_interpreter_from_directory_that_is_not_cpython(tmp_path: Path) -> None:
    (tmp_path / "prefix" / "bin").mkdir(parents=True)
    with pytest.raises(BuilderError) as info:
        interpreter_from(tmp_path / "prefix", cache_dir=tmp_path / "cache")
    assert "not a CPython installation: no bin/python3.X executable" in str(info.value)
    assert "pyenv prefix" in str(info.value.hint)


def test_extract_keeps_exec_bits_and_symlinks(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    top = extract_interpreter(archive, tmp_path / "out dir")
    assert top == tmp_path / "out dir" / "python"
    exe = top / "bin" / "python3.11"
    assert exe.stat().st_mode & 0o111
    assert (top / "bin" / "python3").is_symlink()
    assert (top / "bin" / "python3").resolve() == exe.resolve()
    assert sorted(p.name for p in (tmp_path / "out dir").iterdir()) == ["python"]


def test_extract_zst(tmp_path: Path) -> None:
    fake_pbs_tree(tmp_path / "t")
    archive = tar_tree(tmp_path / "t", tmp_path / "x.tar.zst", compression="zst")
    assert (extract_interpreter(archive, tmp_path / "o") / "bin" / "python3").exists()


def test_extract_refuses_existing_python(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    (tmp_path / "o" / "python").mkdir(parents=True)
    with pytest.raises(BuilderError, match="already exists"):
        extract_interpreter(archive, tmp_path / "o")


GOOD = [Member("python/bin/python3", b"#!/bin/sh\n", mode=0o755)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Member("python/../../evil", b"x"), "member leaving the destination: 'python/../../evil'"),
        (Member("/etc/evil", b"x"), "member with an absolute path: '/etc/evil'"),
        (Member("python/lib/up", type=tarfile.SYMTYPE, linkname="../../../etc"),
         "unsafe member refused"),
        (Member("python/lib/abs", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
         "link to an absolute path"),
        (Member("python/lib/hard", type=tarfile.LNKTYPE, linkname="../outside"),
         "unsafe member refused"),
        (Member("python/dev/null", type=tarfile.CHRTYPE), "special file"),
        (Member("python/fifo", type=tarfile.FIFOTYPE), "special file"),
    ],
)
def test_extract_refuses_unsafe_members(tmp_path: Path, bad: Member, message: str) -> None:
    archive = tar_with_members(tmp_path / "bad.tar.gz", [*GOOD, bad])
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeMemberError) as info:
        extract_interpreter(archive, dest)
    assert message in str(info.value)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "etc").exists() and not (tmp_path / "evil").exists()


def test_extract_refuses_links_escaping_through_symlinked_dir(tmp_path: Path) -> None:
    archive = tar_with_members(tmp_path / "bad.tar.gz", [
        *GOOD,
        Member("python/escape", type=tarfile.SYMTYPE, linkname=".."),
        Member("python/escape/escape2", type=tarfile.SYMTYPE, linkname=".."),
        Member("python/escape/escape2/pwned", b"x"),
    ])
    with pytest.raises(UnsafeMemberError):
        extract_interpreter(archive, tmp_path / "dest")
    assert not (tmp_path / "pwned").exists()


def test_extract_wrong_top_level(tmp_path: Path) -> None:
    archive = tar_with_members(tmp_path / "a.tar.gz", [*GOOD, Member("README", b"x")])
    with pytest.raises(BuilderError, match=r"top-level entries \['README', 'python'\]"):
        extract_interpreter(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_extract_corrupt_archive(tmp_path: Path) -> None:
    archive = tmp_path / pbs_filename()
    archive.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(BuilderError, match=r"cannot read archive|cannot extract archive"):
        extract_interpreter(archive, tmp_path / "dest")
