"""Debian header packages: apt-get download + dpkg-deb -x, never installed (fake commands)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.node.debheaders import KRB5_HEADERS, fetch_debian_headers


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
