"""Recipe -> canonical dict, and the digests that make locks and bundles input-addressed."""

from __future__ import annotations

from typing import Any

from builder.fsutil import canonical_json, sha256_bytes
from builder.recipe.model import Node, Recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Everything that defines the app (not where the file lives)."""
    service = recipe.service
    kernels = recipe.kernels
    node = recipe.node
    return {
        "format_version": 1,
        "app": {
            "name": recipe.name,
            "version": recipe.version,
            "summary": recipe.summary,
            "ui": {
                "name": recipe.ui.name,
                "icon": recipe.ui.icon,
                "kind": recipe.ui.kind.value,
                "accepted_env": list(recipe.ui.accepted_env),
            },
        },
        "runtime": {
            "python": recipe.runtime.python,
            "pbs_release": recipe.runtime.pbs_release,
            "flavor": recipe.runtime.flavor,
        },
        "packages": {
            "requirements": list(recipe.packages.requirements),
            "index_url": recipe.packages.index_url,
            "allow_sdists": (recipe.packages.allow_sdists
                             if isinstance(recipe.packages.allow_sdists, bool)
                             else list(recipe.packages.allow_sdists)),
            "expose": None if recipe.packages.expose is None else list(recipe.packages.expose),
        },
        "targets": {
            "triples": list(recipe.targets.triples),
            "glibc_floor": recipe.targets.glibc_floor,
            "glibc_exempt": list(recipe.targets.glibc_exempt),
        },
        "service": None
        if service is None
        else {
            "command": list(service.command),
            "kind": service.kind.value,
            "protocol": service.protocol.value,
            "port": service.port,
            "url_template": service.url_template,
            "env": dict(service.env),
        },
        "kernels": None
        if kernels is None
        else {
            "image_python": kernels.image_python.value,
            "python3": kernels.python3,
            "wheelhouse": list(kernels.wheelhouse),
            "wheelhouse_pythons": list(kernels.wheelhouse_pythons),
        },
        "node": None if node is None else _node_to_dict(node),
        "build": {"steps": [list(step) for step in recipe.build.steps]},
        "checks": {
            "imports": recipe.checks.imports,
            "import_skip": list(recipe.checks.import_skip),
            "commands": [list(command) for command in recipe.checks.commands],
            "service": recipe.checks.service,
            "timeout": recipe.checks.timeout,
        },
    }


def _node_to_dict(node: Node) -> dict[str, Any]:
    app = node.app
    return {
        "package": app.package,
        "version": app.version,
        "toolchain": node.toolchain,
        "bin": dict(node.bin),
        "nested": list(app.nested),
        "allow_scripts": dict(app.allow_scripts),
        "links": [{"path": link.path, "target": link.target} for link in app.links],
        "scripts": [{"project": s.project, "script": s.script} for s in app.scripts],
        "drop": list(app.drop),
        "build_headers": list(app.build_headers),
        "exempt": [{"pattern": e.pattern, "reason": e.reason} for e in app.exempt],
    }


def lock_inputs(recipe: Recipe) -> dict[str, Any]:
    """The part of a recipe a lock depends on; editing anything else does not stale the lock."""
    full = recipe_to_dict(recipe)
    inputs = {
        "name": recipe.name,
        "runtime": full["runtime"],
        "packages": {k: full["packages"][k] for k in ("requirements", "index_url", "allow_sdists")},
        "targets": {k: full["targets"][k] for k in ("triples", "glibc_floor")},
    }
    if recipe.kernels is not None and recipe.kernels.wheelhouse:
        inputs["kernels"] = {k: full["kernels"][k] for k in ("wheelhouse", "wheelhouse_pythons")}
    if recipe.node is not None:  # what npm's lock and the toolchain pin depend on
        inputs["node"] = {k: full["node"][k]
                          for k in ("package", "version", "toolchain", "nested", "allow_scripts")}
    return inputs


def lock_digest(recipe: Recipe) -> str:
    return "sha256:" + sha256_bytes(canonical_json(lock_inputs(recipe)).encode())


def recipe_digest(recipe: Recipe) -> str:
    return "sha256:" + sha256_bytes(canonical_json(recipe_to_dict(recipe)).encode())
