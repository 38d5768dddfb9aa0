"""Small npm lock trees shared by the node unit tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.node.lockfile import root_package_json
from builder.recipe.node import NodeAppSpec

SPEC = NodeAppSpec(package="app", version="1.2.3", nested=("lib/sub",),
                   allow_scripts=(("app", False), ("native", True)))
URL = "https://registry.npmjs.org/x/-/x-1.0.0.tgz"
SHA512 = "sha512-" + "A" * 86 + "=="


def entry(**extra: Any) -> dict[str, Any]:
    return {"version": "1.0.0", "resolved": URL, "integrity": SHA512, **extra}


def lock_data(deps: Mapping[str, str], **packages: dict[str, Any]) -> dict[str, Any]:
    return {"lockfileVersion": 3,
            "packages": {"": {"dependencies": dict(deps)}, **packages}}


def write_lock_dir(lock_dir: Path, *, version: str = "1.2.3") -> None:
    spec_json = json.loads(root_package_json(SPEC))
    spec_json["dependencies"]["app"] = version
    (lock_dir / "nested/lib/sub").mkdir(parents=True)
    (lock_dir / "package.json").write_text(json.dumps(spec_json))
    (lock_dir / "package-lock.json").write_text(json.dumps(
        lock_data({"app": version}, **{"node_modules/app": entry()})))
    (lock_dir / "nested/lib/sub/package.json").write_text(json.dumps({"dependencies": {"y": "1"}}))
    (lock_dir / "nested/lib/sub/package-lock.json").write_text(json.dumps(
        lock_data({"y": "1"}, **{"node_modules/y": entry()})))


