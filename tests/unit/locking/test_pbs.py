"""PBS asset naming, checksum parsing and pin resolution (offline: directory mirrors, fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import RELEASE, TRIPLE, fake_mirror, fake_pbs_archive, sha256_of

from builder.errors import BuilderError, HashMismatchError
from builder.locking.pbs import (
    DEFAULT_RELEASE_BASE,
    TableEntry,
    asset_filename,
    asset_url,
    builtin_table,
    mirror_location,
    parse_sha256_file,
    parse_sha256sums,
    parse_table,
    pick_asset,
    resolve_pin,
)
from builder.net import NetworkError

HEX_A = "a" * 64
HEX_B = "b" * 64
X86_SHA = "4a51ce60007a6facf64e5495f4cf322e311ba9f39a8cd3f3e4c026eae488e140"
ARM_SHA = "b102eaf865eb715aa98a8a2ef19037b6cc3ae7dfd4a632802650f29de635aa13"


@pytest.mark.parametrize(
    ("flavor", "expected"),
    [
        ("install_only", "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz"),
        ("install_only_stripped",
         "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"),
        ("pgo+lto-full", "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-pgo+lto-full.tar.zst"),
    ],
)
def test_asset_filename(flavor: str, expected: str) -> None:
    assert asset_filename(python_version="3.11.7", release="20240107", triple=TRIPLE,
                          flavor=flavor) == expected


def test_asset_url_percent_encodes_plus() -> None:
    name = "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-pgo+lto-full.tar.zst"
    assert asset_url(DEFAULT_RELEASE_BASE + "/", "20240107", name) == (
        "https://github.com/astral-sh/python-build-standalone/releases/download/20240107/"
        "cpython-3.11.7%2B20240107-x86_64-unknown-linux-gnu-pgo%2Blto-full.tar.zst"
    )


def test_mirror_location_url_and_directory(tmp_path: Path) -> None:
    name = "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz"
    assert mirror_location("http://127.0.0.1:8000/pbs", "20240107", name) == (
        "http://127.0.0.1:8000/pbs/20240107/"
        "cpython-3.11.7%2B20240107-x86_64-unknown-linux-gnu-install_only.tar.gz"
    )
    assert mirror_location(str(tmp_path), "20240107", name) == str(tmp_path / "20240107" / name)
    assert mirror_location(f"file://{tmp_path}", "20240107", "SHA256SUMS") == (
        f"file://{tmp_path}/20240107/SHA256SUMS"
    )


def test_parse_sha256sums() -> None:
    text = f"{HEX_A.upper()}  a.tar.gz\n\n{HEX_B} *b.tar.zst\n{HEX_A}  a.tar.gz\n"
    assert parse_sha256sums(text) == {"a.tar.gz": HEX_A, "b.tar.zst": HEX_B}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{HEX_A}  a\nnot a line\n",
         "SHA256SUMS: line 2: expected '<64 hex digits>  <file name>', got 'not a line'"),
        (f"{HEX_A[:-1]}  a\n", "SHA256SUMS: line 1: expected '<64 hex digits>  <file name>'"),
        (f"{HEX_A}\n", "SHA256SUMS: line 1: expected"),
        (f"{HEX_A}  a b\n", "SHA256SUMS: line 1: expected"),
        (f"{HEX_A}  a\n\n{HEX_B}  a\n", "SHA256SUMS: line 3: a listed twice with different sha256"),
    ],
)
def test_parse_sha256sums_errors(text: str, message: str) -> None:
    with pytest.raises(BuilderError) as info:
        parse_sha256sums(text)
    assert str(info.value).startswith(message)


def test_parse_sha256_file() -> None:
    assert parse_sha256_file(f"{HEX_A}\n", filename="x", where="w") == HEX_A
    assert parse_sha256_file(f"{HEX_A}  x\n", filename="x", where="w") == HEX_A
    with pytest.raises(BuilderError, match="expected the sha256 of x"):
        parse_sha256_file(f"{HEX_A}  y\n", filename="x", where="w")


def test_builtin_table_has_the_published_values() -> None:
    table = {(e.release, e.python_version, e.triple, e.flavor): e for e in builtin_table()}
    x86 = table[("20240107", "3.11.7", "x86_64-unknown-linux-gnu", "install_only")]
    arm = table[("20240107", "3.11.7", "aarch64-unknown-linux-gnu", "install_only")]
    assert (x86.sha256, x86.size) == (X86_SHA, None)
    assert (arm.sha256, arm.size) == (ARM_SHA, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[", "not JSON"),
        ('{"format_version": 2, "assets": []}', "expected an object with format_version 1"),
        ('{"format_version": 1, "assets": {}}', "'assets' must be a list"),
        ('{"format_version": 1, "assets": [{"release": "r"}]}',
         "assets[0].python_version: must be a non-empty string"),
        ('{"format_version": 1, "assets": [{"release": "r", "python_version": "3.11.7", '
         '"triple": "t", "flavor": "f", "sha256": "XYZ", "size": -1}]}',
         "assets[0].size: must be a non-negative integer or null\nassets[0].sha256"),
    ],
)
def test_parse_table_errors(text: str, message: str) -> None:
    with pytest.raises(BuilderError) as info:
        parse_table(text, where="t.json")
    assert message in str(info.value)


def test_pick_asset_takes_newest_patch_and_ignores_other_minors() -> None:
    names = {
        "cpython-3.11.6+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz": HEX_A,
        "cpython-3.11.10+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz": HEX_A,
        "cpython-3.12.1+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz": HEX_A,
        "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz": HEX_A,
        "cpython-3.11.7+20240107-aarch64-unknown-linux-gnu-install_only.tar.gz": HEX_A,
    }
    assert pick_asset(names, python_minor="3.11", release=RELEASE, triple=TRIPLE,
                      flavor="install_only") == (
        "3.11.10", "cpython-3.11.10+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz")


def test_resolve_from_directory_mirror_sha256sums(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src", version="3.11.9")
    mirror = fake_mirror(tmp_path / "mirror", [archive])
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=str(mirror), table=())
    assert pin.python_version == "3.11.9"
    assert pin.filename == archive.name
    assert pin.sha256 == sha256_of(archive)
    assert pin.size == archive.stat().st_size
    assert pin.url == (f"{DEFAULT_RELEASE_BASE}/{RELEASE}/"
                       "cpython-3.11.9%2B20240107-x86_64-unknown-linux-gnu-install_only.tar.gz")


def test_resolve_from_per_asset_sha256_in_directory(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src", version="3.11.9")
    mirror = fake_mirror(tmp_path / "mirror", [archive], sums=False, per_asset=True)
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=str(mirror), table=())
    assert (pin.python_version, pin.sha256) == ("3.11.9", sha256_of(archive))


def test_resolve_falls_back_to_builtin_table(tmp_path: Path) -> None:
    pin = resolve_pin(python_minor="3.11", release="20240107", triple=TRIPLE,
                      flavor="install_only", mirror=str(tmp_path / "nothing-here"))
    assert pin.python_version == "3.11.7"
    assert pin.sha256 == X86_SHA
    assert pin.size is None
    assert pin.url.endswith("/20240107/cpython-3.11.7%2B20240107-x86_64-unknown-linux-gnu-"
                            "install_only.tar.gz")


class Unreachable:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def read_text(self, source: str) -> str:
        self.asked.append(source)
        raise NetworkError("cannot reach server: no route", where=source)

    def content_length(self, source: str) -> int | None:
        self.asked.append("HEAD " + source)
        return None


def test_resolve_unreachable_uses_table_for_aarch64() -> None:
    transport = Unreachable()
    pin = resolve_pin(python_minor="3.11", release="20240107", triple="aarch64-unknown-linux-gnu",
                      flavor="install_only", mirror=None, transport=transport)
    assert pin.sha256 == ARM_SHA
    # one attempt only: no per-asset .sha256 and no HEAD against an unreachable place
    assert transport.asked == [f"{DEFAULT_RELEASE_BASE}/20240107/SHA256SUMS"]


def test_resolve_from_file_url_mirror_with_per_asset_sha256(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src", version="3.11.8")
    mirror = fake_mirror(tmp_path / "mirror", [archive], sums=False, per_asset=True)
    pin = resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                      mirror=mirror.as_uri(), table=())
    assert (pin.filename, pin.sha256, pin.size) == (
        archive.name, sha256_of(archive), archive.stat().st_size)


def test_resolve_nothing_found_names_everything() -> None:
    with pytest.raises(BuilderError) as info:
        resolve_pin(python_minor="3.12", release="20991231", triple=TRIPLE,
                    flavor="install_only", mirror="http://mirror.invalid/pbs",
                    transport=Unreachable())
    text = str(info.value)
    assert "Python 3.12, release 20991231, target x86_64-unknown-linux-gnu, flavor install_only" \
        in text
    assert "http://mirror.invalid/pbs/20991231/SHA256SUMS: cannot reach server" in text
    assert "BUILDER_PBS_MIRROR" in text and "--python-from" in text


def test_resolve_refuses_checksum_contradicting_table(tmp_path: Path) -> None:
    archive = fake_pbs_archive(tmp_path / "src")
    mirror = fake_mirror(tmp_path / "mirror", [archive], override={archive.name: HEX_A})
    table = (TableEntry(release=RELEASE, python_version="3.11.7", triple=TRIPLE,
                        flavor="install_only", sha256=HEX_B, size=None),)
    with pytest.raises(HashMismatchError) as info:
        resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                    mirror=str(mirror), table=table)
    assert (info.value.expected, info.value.actual) == (HEX_B, HEX_A)


def test_resolve_damaged_sums_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / RELEASE
    folder.mkdir()
    (folder / "SHA256SUMS").write_text("garbage\n")
    with pytest.raises(BuilderError, match="SHA256SUMS: line 1"):
        resolve_pin(python_minor="3.11", release=RELEASE, triple=TRIPLE, flavor="install_only",
                    mirror=str(tmp_path), table=())
