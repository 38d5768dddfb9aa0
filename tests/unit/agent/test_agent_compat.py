"""``agent check``: facts read from fabricated root filesystems, verdicts in numbers, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_factories import EM_AARCH64, debian, elf, make_bundle, put

from builder.agent.compat.model import BundleNeeds, Verdict, image_from_numbers
from builder.agent.compat.probe import probe_rootfs, resolve_in_root
from builder.agent.compat.verdict import check_compat
from builder.cli.main import main


def needs(floor: str | None = "2.34", arch: str = "x86_64", libc: str = "gnu") -> BundleNeeds:
    return BundleNeeds(name="demo", version="1.0", target=f"{arch}-unknown-linux-{libc}",
                       arch=arch, libc=libc,
                       glibc_floor=tuple(int(p) for p in floor.split(".")) if floor else None,
                       glibc_floor_file="app/bin/tiny" if floor else None)


def test_debian_root_read_through_its_own_links(tmp_path: Path) -> None:
    facts = probe_rootfs(debian(tmp_path))
    assert (facts.arch, facts.libc, facts.libc_version) == ("x86_64", "gnu", (2, 31))
    assert facts.arch_from == "/bin/sh"
    assert facts.libc_from == "/usr/lib/x86_64-linux-gnu/libc.so.6 (its version string)"
    assert resolve_in_root(tmp_path, "/lib/x86_64-linux-gnu/libc.so.6") == \
        tmp_path / "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert resolve_in_root(tmp_path, "/../../../etc/passwd") is None  # stays inside


def test_glibc_version_from_the_file_name(tmp_path: Path) -> None:
    put(tmp_path, "bin/sh", elf())
    put(tmp_path, "lib/x86_64-linux-gnu/libc.so.6", link="/lib/x86_64-linux-gnu/libc-2.28.so")
    put(tmp_path, "lib/x86_64-linux-gnu/libc-2.28.so", elf())
    facts = probe_rootfs(tmp_path)
    assert facts.libc_version == (2, 28)
    assert facts.libc_from is not None and "its file name libc-2.28.so" in facts.libc_from


def test_glibc_version_from_dpkg_as_a_last_resort(tmp_path: Path) -> None:
    put(tmp_path, "bin/sh", elf())
    put(tmp_path, "usr/lib64/libc.so.6", elf())
    put(tmp_path, "var/lib/dpkg/status",
        b"Package: libc-bin\nVersion: 9.9\n\nPackage: libc6\nStatus: install ok\n"
        b"Version: 2.35-0ubuntu3.8\n\n")
    facts = probe_rootfs(tmp_path)
    assert facts.libc_version == (2, 35)
    assert facts.libc_from == "/usr/lib64/libc.so.6 (the dpkg status of libc6)"


def test_a_host_path_is_never_read(tmp_path: Path) -> None:
    """An absolute link to the host's libc means the image's path, which does not exist."""
    put(tmp_path, "bin/sh", elf())
    host_libc = next((p for p in (Path("/usr/lib/x86_64-linux-gnu/libc.so.6"),
                                  Path("/lib64/libc.so.6"), Path("/usr/lib64/libc.so.6"))
                      if p.exists()), Path("/usr/lib/x86_64-linux-gnu/libc.so.6"))
    put(tmp_path, "lib/libc.so.6", link=str(host_libc))
    facts = probe_rootfs(tmp_path)
    assert facts.libc is None


def test_musl_root(tmp_path: Path) -> None:
    put(tmp_path, "bin/sh", link="/bin/busybox")
    put(tmp_path, "bin/busybox", elf())
    put(tmp_path, "lib/ld-musl-x86_64.so.1", elf())
    put(tmp_path, "lib/apk/db/installed",
        b"C:Q1abc\nP:busybox\nV:1.36.1-r5\n\nC:Q1def\nP:musl\nV:1.2.4-r2\nA:x86_64\n\n")
    facts = probe_rootfs(tmp_path)
    assert (facts.libc, facts.libc_version, facts.arch) == ("musl", (1, 2, 4), "x86_64")
    result = check_compat(needs("2.17"), facts)
    assert result.verdict is Verdict.INCOMPATIBLE
    assert result.reasons[0] == ("the bundle needs glibc 2.17, the image has musl 1.2.4 "
                                 "(from /lib/ld-musl-x86_64.so.1 (apk database))")
    assert check_compat(needs(None, libc="musl"), facts).verdict is Verdict.COMPATIBLE


def test_root_without_a_c_library(tmp_path: Path) -> None:
    put(tmp_path, "bin/sh", elf())  # a static shell, as in a distroless image
    result = check_compat(needs(), probe_rootfs(tmp_path))
    assert result.verdict is Verdict.UNKNOWN and result.exit_code == 4
    assert result.reasons[0].startswith("no C library found in the image (looked for "
                                        "libc.so.6 and ld-musl-*.so.1 in ")
    assert result.reasons[0].endswith("the bundle needs glibc 2.34")


def test_empty_root_cannot_tell_anything(tmp_path: Path) -> None:
    result = check_compat(needs(), probe_rootfs(tmp_path))
    assert result.verdict is Verdict.UNKNOWN
    assert "cannot tell the image's architecture" in result.reasons[0]


@pytest.mark.parametrize(("floor", "image", "verdict", "reason"), [
    ("2.34", "2.36", Verdict.COMPATIBLE, "needs glibc 2.34, image has 2.36"),
    ("2.36", "2.36", Verdict.COMPATIBLE, "needs glibc 2.36, image has 2.36"),
    ("2.36", "2.31", Verdict.INCOMPATIBLE, "needs glibc 2.36 (app/bin/tiny), image has 2.31"),
    ("2.3.4", "2.3", Verdict.INCOMPATIBLE, "needs glibc 2.3.4 (app/bin/tiny), image has 2.3"),
    (None, "2.17", Verdict.COMPATIBLE, "needs glibc, image has glibc 2.17"),
])
def test_glibc_verdicts(floor: str | None, image: str, verdict: Verdict, reason: str) -> None:
    result = check_compat(needs(floor), image_from_numbers(arch="x86_64", libc="gnu",
                                                           version=image))
    assert result.verdict is verdict
    assert result.reasons[0].startswith(reason), result.reasons


def test_architecture_mismatch_wins(tmp_path: Path) -> None:
    result = check_compat(needs("2.17"), probe_rootfs(debian(tmp_path, "2.36", EM_AARCH64)))
    assert result.verdict is Verdict.INCOMPATIBLE and result.exit_code == 3
    assert result.reasons[0] == ("the bundle is built for x86_64, the image is aarch64 "
                                 "(from /bin/sh)")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "dist", overrides={"glibc_floor": "2.34",
                                                       "glibc_floor_file": "app/bin/tiny"})
    old, new = debian(tmp_path / "old", "2.31"), debian(tmp_path / "new", "2.36")
    assert main(["agent", "check", str(bundle.archive), "--rootfs", str(new)]) == 0
    assert capsys.readouterr().out.startswith(f"compatible: demo 1.0 (x86_64-unknown-linux-gnu)"
                                              f" on {new}\n")
    assert main(["agent", "check", str(bundle.sidecar), "--rootfs", str(old), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "incompatible" and data["exit_code"] == 3
    assert data["reasons"][0] == ("needs glibc 2.34 (app/bin/tiny), image has 2.31 (from "
                                  "/usr/lib/x86_64-linux-gnu/libc.so.6 (its version string))")
    assert data["image"]["libc_version"] == "2.31"
    assert main(["agent", "check", str(bundle.archive), "--glibc", "2.35", "--arch",
                 "x86_64"]) == 0
    assert main(["agent", "check", str(bundle.archive), "--musl", "--arch", "x86_64"]) == 3
    assert main(["agent", "check", str(bundle.archive), "--rootfs", str(tmp_path / "x" / "y")
                 ]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert main(["agent", "check", str(bundle.archive), "--glibc", "2.35"]) == 2
    assert main(["agent", "check", str(bundle.archive), "--glibc", "new", "--arch", "x"]) == 2
    assert main(["agent", "check", str(tmp_path / "nope.tar.zst"), "--glibc", "2.35",
                 "--arch", "x86_64"]) == 1
    assert "no such bundle file" in capsys.readouterr().err
