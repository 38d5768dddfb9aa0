"""Locking source distributions: each sdist pinned (URL, sha256) with the build dependencies
its PEP 517 backend needs, resolved and hashed for every architecture a build may run on.

The static ``[build-system] requires`` come from the archive without running anything; what
the backend asks for on top (``get_requires_for_build_wheel``, e.g. ``setup_requires``) is
asked once, here, in a build environment made from builder's own interpreter, offline. At build
time the same question is asked again and anything not pinned here stops the build.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import BuilderError
from builder.fetch.sdists import fetch_sdist
from builder.fetch.wheels import fetch_packages
from builder.host import HOST_ARCH, HOST_TRIPLE
from builder.lock.model import LockedPackage, SdistLock, TargetLock
from builder.locking.resolve import resolve_requirements
from builder.scratch import STAGE_DIR, claimed_dir
from builder.sdist import BuildSystem, read_build_system, requires_for_build, unpack_sdist
from builder.tools.run import CommandRunner, run_command

# architectures a build may run on: build dependencies are pinned for each
BUILD_ARCHES = ("aarch64", "x86_64")
TOOL_GLIBC_FLOOR = "2.17"  # build dependencies run on the build machine


def sdist_packages(targets: Sequence[TargetLock]) -> tuple[LockedPackage, ...]:
    """Every source distribution any target chose, once (by file name), sorted."""
    found: dict[str, LockedPackage] = {}
    for target in targets:
        for package in target.packages:
            if package.is_sdist:
                found.setdefault(package.filename, package)
    return tuple(found[name] for name in sorted(found))


def lock_sdists(
    targets: Sequence[TargetLock],
    *,
    python_version: str,
    index_url: str,
    cache_dir: Path,
    where: str,
    runner: CommandRunner = run_command,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[SdistLock, ...]:
    locks = []
    for package in sdist_packages(targets):
        archive = fetch_sdist(package, cache_dir=cache_dir)
        system = read_build_system(archive)
        at = f"{where}: {package.name} {package.version} ({package.filename})"

        def resolve(requires: Sequence[str], *, at: str = at) -> tuple[
                tuple[str, tuple[LockedPackage, ...]], ...]:
            return tuple(
                (arch, resolve_requirements(
                    requires, triple=f"{arch}-unknown-linux-gnu", python_version=python_version,
                    glibc_floor=TOOL_GLIBC_FLOOR, index_url=index_url, cache_dir=cache_dir,
                    runner=runner, what=f"resolving the build dependencies for {arch}",
                    where=at))
                for arch in BUILD_ARCHES)

        requires = tuple(system.requires)
        deps = resolve(requires)
        extra = _dynamic_requires(archive, system, deps=dict(deps).get(HOST_ARCH, ()),
                                  python_version=python_version, index_url=index_url,
                                  cache_dir=cache_dir, runner=runner, where=at)
        if extra:
            requires = (*requires, *sorted(set(extra) - set(requires)))
            deps = resolve(requires)
        log(f"locked the build of {package.filename}: {system.backend}, "
            f"{len(dict(deps).get(HOST_ARCH, ()))} build dependencies")
        locks.append(SdistLock(
            name=package.name, version=package.version, filename=package.filename,
            url=package.url or "", sha256=package.sha256, backend=system.backend,
            backend_path=system.backend_path, requires=requires, build_deps=deps))
    return tuple(locks)


def _dynamic_requires(archive: Path, system: BuildSystem, *, deps: tuple[LockedPackage, ...],
                      python_version: str, index_url: str, cache_dir: Path,
                      runner: CommandRunner, where: str) -> list[str]:
    """What the backend asks for that the static requires do not already satisfy."""
    wheels = fetch_packages(deps, triple=HOST_TRIPLE,
                            python_version=python_version, index_url=index_url,
                            glibc_floor=TOOL_GLIBC_FLOOR, cache_dir=cache_dir, runner=runner)
    with claimed_dir(cache_dir / STAGE_DIR, prefix="builder-sdist-lock-") as tmp:
        project = unpack_sdist(archive, tmp / "src")
        asked = requires_for_build(project, system, python=Path(sys.executable),
                                   env_dir=tmp / "env",
                                   deps=[(w, p.sha256) for w, p in zip(wheels, deps,
                                                                        strict=True)],
                                   source_date_epoch=0, where=where)
    pinned = {p.name: p.version for p in deps}
    extra = []
    for text in asked:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            raise BuilderError(f"the build backend asked for {text!r}, not a requirement",
                               where=where) from None
        version = pinned.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            extra.append(text)
    return extra
