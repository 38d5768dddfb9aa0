"""Debian header packages: apt-get download + dpkg-deb -x, never installed (fake commands)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.node.debheaders import (
    KRB5_HEADERS,
    DebPin,
    fetch_debian_headers,
    fetch_pinned_headers,
    parse_print_uris,
    resolve_debs,
)
from builder.tools.run import run_in


class FakeApt:
    def __init__(self, *, download_rc: int = 0, headers: Sequence[str] = KRB5_HEADERS) -> None:
        self.download_rc = download_rc
        self.headers = headers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if argv[:2] == ["apt-get", "download"]:
            if self.download_rc:
                return subprocess.CompletedProcess(list(argv), self.download_rc,
                                                   "E: Unable to locate package nope\n", "")
            for name in argv[2:]:
                (cwd / f"{name}_1.0_amd64.deb").write_bytes(name.encode())
        elif argv[0] == "dpkg-deb":
            for header in self.headers:
                path = Path(argv[3]) / "usr/include" / header
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("/* h */\n")
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def test_headers_are_unpacked_not_installed(tmp_path: Path) -> None:
    apt = FakeApt()
    headers = fetch_debian_headers(("libkrb5-dev", "comerr-dev"), tmp_path, runner=apt,
                                   expect=KRB5_HEADERS, env={})
    assert apt.calls[0] == ["apt-get", "download", "libkrb5-dev", "comerr-dev"]
    assert [c[:2] for c in apt.calls[1:]] == [["dpkg-deb", "-x"]] * 2
    assert [d.name for d in headers.debs] == ["comerr-dev_1.0_amd64.deb",
                                              "libkrb5-dev_1.0_amd64.deb"]
    assert headers.cppflags() == f"-idirafter {tmp_path}/root/usr/include"


def test_download_failure_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BuilderError) as err:
        fetch_debian_headers(("nope",), tmp_path, runner=FakeApt(download_rc=100), env={})
    assert err.value.what == "apt-get download nope failed: E: Unable to locate package nope"
    assert err.value.hint is not None and "apt-get update" in err.value.hint


def test_missing_headers_are_named(tmp_path: Path) -> None:
    with pytest.raises(BuilderError) as err:
        fetch_debian_headers(("libkrb5-dev",), tmp_path, runner=FakeApt(headers=("krb5.h",)),
                             expect=KRB5_HEADERS, env={})
    assert err.value.what == ("the unpacked packages lack gssapi/gssapi.h, "
                              "gssapi/gssapi_krb5.h")


# --- pinned by the lock: apt-get download --print-uris, then the exact files by sha256 ---------

PRINT_URIS = (
    "'http://deb.debian.org/debian/pool/main/k/krb5/libkrb5-dev_1.20.1-2%2bdeb12u5_amd64.deb' "
    "libkrb5-dev_1.20.1-2+deb12u5_amd64.deb 15504 SHA256:" + "a" * 64 + "\n"
    "'http://deb.debian.org/debian/pool/main/e/e2fsprogs/comerr-dev_2.1-1.47.0-2%2bb2_amd64.deb' "
    "comerr-dev_2.1-1.47.0-2+b2_amd64.deb 51704 SHA256:" + "b" * 64 + "\n"
)


def test_print_uris_become_pins_sorted_by_package() -> None:
    pins = parse_print_uris(PRINT_URIS, packages=("libkrb5-dev", "comerr-dev"))
    assert [(p.package, p.version, p.size, p.sha256[0]) for p in pins] == [
        ("comerr-dev", "2.1-1.47.0-2+b2", 51704, "b"),
        ("libkrb5-dev", "1.20.1-2+deb12u5", 15504, "a")]
    assert pins[1].url.endswith("/libkrb5-dev_1.20.1-2%2bdeb12u5_amd64.deb")
    with pytest.raises(BuilderError, match="apt gave no download with a SHA256 for krb5-multidev"):
        parse_print_uris(PRINT_URIS, packages=("libkrb5-dev", "krb5-multidev"))


def test_resolving_downloads_nothing(tmp_path: Path) -> None:
    calls = []

    def apt(argv: Sequence[str], *, cwd: Path,
            env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 0, PRINT_URIS, "")

    pins = resolve_debs(("libkrb5-dev", "comerr-dev"), runner=apt, work_dir=tmp_path, env={})
    assert calls == [["apt-get", "download", "--print-uris", "libkrb5-dev", "comerr-dev"]]
    assert len(pins) == 2 and list(tmp_path.iterdir()) == []


def _deb(tmp_path: Path, header: str) -> tuple[Path, DebPin]:
    """A real .deb (dpkg-deb --build) holding usr/include/<header>."""
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text("Package: fake-dev\nVersion: 1.0\nArchitecture: all\n"
                                         "Maintainer: t <t@example.invalid>\nDescription: t\n")
    (tree / "usr/include" / header).parent.mkdir(parents=True)
    (tree / "usr/include" / header).write_text("/* h */\n")
    deb = tmp_path / "fake-dev_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    data = deb.read_bytes()
    return deb, DebPin(package="fake-dev", version="1.0", filename=deb.name, url=str(deb),
                       size=len(data), sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_pinned_debs_are_checked_cached_and_unpacked(tmp_path: Path) -> None:
    deb, pin = _deb(tmp_path, "krb5.h")
    headers = fetch_pinned_headers((pin,), tmp_path / "h1", cache_dir=tmp_path / "cache",
                                   runner=run_in, expect=("krb5.h",))
    assert (headers.include_dir / "krb5.h").is_file()
    assert [(d.name, d.sha256) for d in headers.debs] == [(pin.filename, pin.sha256)]
    deb.unlink()  # the second build needs no download: the cache has it by sha256
    again = fetch_pinned_headers((pin,), tmp_path / "h2", cache_dir=tmp_path / "cache",
                                 runner=run_in, expect=("krb5.h",))
    assert (again.include_dir / "krb5.h").is_file()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_a_changed_deb_is_refused_with_what_to_do(tmp_path: Path) -> None:
    _deb_file, pin = _deb(tmp_path, "krb5.h")
    wrong = replace(pin, sha256="0" * 64)
    with pytest.raises(BuilderError) as err:
        fetch_pinned_headers((wrong,), tmp_path / "h", cache_dir=tmp_path / "cache",
                             runner=run_in)
    assert err.value.what.startswith(f"cannot get {pin.filename} (pinned by the lock)")
    assert err.value.hint is not None and "lock again" in err.value.hint
    assert not (tmp_path / "cache/debs" / wrong.sha256 / pin.filename).exists()
    assert not (tmp_path / "h/root/usr").exists()
