"""A [node] app in the lock: the toolchain per build arch, npm's lock digest, hand edits caught."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from factories import NODE_RECIPE as RECIPE

from builder.errors import BuilderError
from builder.lock.codec import lock_to_dict, read_lock, write_lock
from builder.lock.model import DebPin, InterpreterPin, Lock, LockedPackage, NodeAppLock, TargetLock
from builder.locking.api import load_fresh_lock
from builder.locking.node import check_npm_lock, lock_node, npm_lock_digest
from builder.node.lockfile import read_node_lock, root_package_json
from builder.recipe import Recipe, lock_digest, parse_recipe_text

SHA512 = "sha512-" + "A" * 86 + "=="
ZIG = {arch: LockedPackage(name="ziglang", version="0.17.1",
                           filename=f"ziglang-0.17.1-py3-none-manylinux_2_12_{arch}.whl",
                           sha256=("a" if arch == "aarch64" else "f") * 64, via=("-r recipe",))
       for arch in ("aarch64", "x86_64")}


def _recipe(tmp_path: Path) -> Recipe:
    path = tmp_path / "recipes" / "tool.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECIPE)
    return parse_recipe_text(RECIPE, path=str(path))


def _npm_lock(lock_dir: Path, recipe: Recipe) -> None:
    assert recipe.node is not None
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "package.json").write_text(root_package_json(recipe.node.app))
    (lock_dir / "package-lock.json").write_text(json.dumps({
        "lockfileVersion": 3,
        "packages": {"": {"dependencies": {"left-pad": "1.3.0"}},
                     "node_modules/left-pad": {
                         "version": "1.3.0", "integrity": SHA512,
                         "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"}},
    }))


class FakePip:
    """pip's resolver for the toolchain: one wheel per architecture asked for."""

    def __init__(self) -> None:
        self.arches: list[str] = []

    def __call__(self, argv: Sequence[str], *, env: Mapping[str, str]
                 ) -> subprocess.CompletedProcess[str]:
        arch = json.loads(argv[3])["platform_machine"]
        self.arches.append(arch)
        assert "ziglang==0.17.1" in argv and env["PIP_CONFIG_FILE"] == "/dev/null"
        report = {"install": [{
            "metadata": {"name": "ziglang", "version": "0.17.1", "requires_dist": []},
            "requested": True,
            "download_info": {"url": f"https://files.invalid/{ZIG[arch].filename}",
                              "archive_info": {"hashes": {"sha256": ZIG[arch].sha256}}}}]}
        report_arg = next(a for a in argv if a.startswith("--report="))
        Path(report_arg.split("=", 1)[1]).write_text(json.dumps(report))
        return subprocess.CompletedProcess(argv, 0, "", "")


def _lock(recipe: Recipe, node: NodeAppLock) -> Lock:
    pin = InterpreterPin(release="20240107", python_version="3.11.7",
                         triple="x86_64-unknown-linux-gnu", flavor="install_only",
                         filename="cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz",
                         url="https://x.invalid/c.tar.gz",
                         sha256="0" * 64, size=None)
    target = TargetLock(target="x86_64-unknown-linux-gnu", platform_tags=("manylinux_2_28_x86_64",),
                        interpreter=pin, packages=())
    return Lock(recipe_name="tool", recipe_digest=lock_digest(recipe), python="3.11",
                glibc_floor="2.28", targets=(target,), node=node)


def test_a_matching_npm_lock_is_kept_and_the_toolchain_pinned_per_build_arch(
        tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    lock_dir = tmp_path / "lockfiles" / "tool"
    _npm_lock(lock_dir, recipe)
    before = (lock_dir / "package-lock.json").read_bytes()
    fake = FakePip()
    node = lock_node(recipe, targets=(), lock_dir=lock_dir, cache_dir=tmp_path / "cache",
                     runner=fake)
    assert sorted(fake.arches) == ["aarch64", "x86_64"]
    assert node.requirement == "left-pad@1.3.0"
    assert node.toolchain == tuple(sorted(ZIG.items()))
    assert node.toolchain_for("aarch64") == ZIG["aarch64"]
    assert node.npm_lock == npm_lock_digest(read_node_lock(lock_dir, recipe.node.app))  # type: ignore[union-attr]
    assert (lock_dir / "package-lock.json").read_bytes() == before  # kept, not re-resolved


def test_the_node_entry_round_trips_through_lock_json(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    deb = DebPin(package="libkrb5-dev", version="1.20.1-2+deb12u5",
                 filename="libkrb5-dev_1.20.1-2+deb12u5_amd64.deb",
                 url="http://deb.debian.org/debian/pool/main/k/krb5/x.deb", size=15504,
                 sha256="c" * 64)
    node = NodeAppLock(requirement="left-pad@1.3.0", npm_lock="sha256:" + "1" * 64,
                       toolchain=tuple(sorted(ZIG.items())), build_headers=(("x86_64", (deb,)),))
    lock = _lock(recipe, node)
    write_lock(lock, tmp_path / "out", refresh_command="builder lock recipes/tool.toml")
    again = read_lock(tmp_path / "out", refresh_command="builder lock recipes/tool.toml")
    assert again == lock
    assert again.node is not None and again.node.headers_for("x86_64") == (deb,)
    assert again.node.headers_for("aarch64") is None
    assert lock_to_dict(again, requirement_hashes={})["node"]["toolchain"]["x86_64"][
        "filename"] == "ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.whl"
    # a recipe without [node] has no key at all (older locks stay byte-identical)
    assert "node" not in lock_to_dict(replace(lock, node=None), requirement_hashes={})


def test_a_hand_edit_of_npms_lock_is_caught_at_build_and_check(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    lock_dir = tmp_path / "lockfiles" / "tool"
    _npm_lock(lock_dir, recipe)
    node = lock_node(recipe, targets=(), lock_dir=lock_dir, cache_dir=tmp_path / "c",
                     runner=FakePip())
    write_lock(_lock(recipe, node), lock_dir, refresh_command="builder lock recipes/tool.toml")
    assert load_fresh_lock(recipe, lock_dir=lock_dir).node == node
    lock_file = lock_dir / "package-lock.json"
    lock_file.write_text(lock_file.read_text().replace("A" * 86, "B" * 86))
    with pytest.raises(BuilderError) as info:
        load_fresh_lock(recipe, lock_dir=lock_dir)
    assert "npm's lockfiles changed since lock.json was written" in info.value.what
    assert info.value.hint == "refresh the lock with: builder lock recipes/tool.toml"
    with pytest.raises(BuilderError, match="npm's lockfiles changed"):
        check_npm_lock(recipe, lock_dir=lock_dir, recorded=None,
                       refresh_command="builder lock recipes/tool.toml")
