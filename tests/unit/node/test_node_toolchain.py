"""The zig wrappers: target triples, and what the cc/c++ scripts hand to zig."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.node.toolchain import gyp_arch, write_toolchain, zig_target


@pytest.mark.parametrize(("triple", "floor", "expected"), [
    ("x86_64-unknown-linux-gnu", "2.28", "x86_64-linux-gnu.2.28"),
    ("aarch64-unknown-linux-gnu", "2.17", "aarch64-linux-gnu.2.17"),
])
def test_zig_target(triple: str, floor: str, expected: str) -> None:
    assert zig_target(triple, floor) == expected


@pytest.mark.parametrize(("triple", "floor", "message"), [
    ("x86_64-unknown-linux-musl", "2.28", "no zig target for 'x86_64-unknown-linux-musl'"),
    ("riscv64-unknown-linux-gnu", "2.28", "no zig target for 'riscv64-unknown-linux-gnu'"),
    ("x86_64-unknown-linux-gnu", "2.28.1", "bad glibc floor '2.28.1'"),
    ("x86_64-unknown-linux-gnu", "latest", "bad glibc floor 'latest'"),
])
def test_zig_target_errors(triple: str, floor: str, message: str) -> None:
    with pytest.raises(BuilderError) as err:
        zig_target(triple, floor)
    assert err.value.what == message


def test_gyp_arch() -> None:
    assert gyp_arch("x86_64-unknown-linux-gnu") == "x64"
    assert gyp_arch("aarch64-unknown-linux-gnu") == "arm64"


@pytest.fixture
def toolchain_dir(tmp_path: Path) -> Path:
    zig = tmp_path / "zig dir" / "zig"  # a space, to prove the quoting
    zig.parent.mkdir()
    zig.write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done\n')
    zig.chmod(0o755)
    toolchain = write_toolchain(tmp_path / "tc", zig=zig, triple="x86_64-unknown-linux-gnu",
                                glibc_floor="2.28", cache_dir=tmp_path / "cache")
    assert toolchain.target == "x86_64-linux-gnu.2.28"
    return toolchain.bin_dir


def _run(bin_dir: Path, tool: str, *args: str) -> str:
    return subprocess.run([str(bin_dir / tool), *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize(("tool", "args", "expected"), [
    # compiling: the target only
    ("cc", ("-c", "a.c", "-o", "a.o"),
     "[cc][-target][x86_64-linux-gnu.2.28][-c][a.c][-o][a.o]"),
    # linking: stripped of DWARF (zig's libc++ carries it)
    ("c++", ("-shared", "-o", "m.node", "a.o"),
     "[c++][-target][x86_64-linux-gnu.2.28][-shared][-o][m.node][a.o][-s]"),
    # a gyp target with no sources on Linux: an empty C unit, since zig would hand the bare
    # command to clang, which rejects the glibc-versioned triple
    ("c++", ("-shared", "-pthread", "-Wl,-soname=w.node", "-o", "w.node", "-Wl,--start-group",
             "-Wl,--end-group"),
     "[c++][-target][x86_64-linux-gnu.2.28][-shared][-pthread][-Wl,-soname=w.node][-o][w.node]"
     "[-Wl,--start-group][-Wl,--end-group][-x][c][/dev/null][-s]"),
    # probes are passed through untouched
    ("cc", ("--version",), "[cc][-target][x86_64-linux-gnu.2.28][--version]"),
    ("ar", ("crs", "x.a", "a.o"), "[ar][crs][x.a][a.o]"),
])
def test_wrappers(toolchain_dir: Path, tool: str, args: tuple[str, ...], expected: str) -> None:
    assert _run(toolchain_dir, tool, *args) == expected


def test_env_points_every_build_system_at_the_wrappers(tmp_path: Path) -> None:
    zig = tmp_path / "zig"
    zig.write_text("")
    tc = write_toolchain(tmp_path / "tc", zig=zig, triple="aarch64-unknown-linux-gnu",
                         glibc_floor="2.28", cache_dir=tmp_path / "cache")
    env = tc.env()
    assert env["CC"] == env["CC_target"] == str(tmp_path / "tc" / "cc")
    assert env["CXX"] == env["LINK"] == env["CXX_target"] == str(tmp_path / "tc" / "c++")
    assert env["AR"] == str(tmp_path / "tc" / "ar")
    assert env["ZIG_GLOBAL_CACHE_DIR"] == env["ZIG_LOCAL_CACHE_DIR"] == str(tmp_path / "cache")
    assert tc.gyp_arch == "arm64"
    assert "aarch64-linux-gnu.2.28" in (tmp_path / "tc" / "cc").read_text()
