"""The sdists phase: each source distribution of a target built into a wheel (or taken from the
cache), by the bundle's interpreter of this machine's architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.fetch.interpreter import InterpreterSource, extract_interpreter, fetch_interpreter
from builder.fetch.sdists import fetch_sdist
from builder.fetch.wheels import fetch_packages
from builder.host import HOST_ARCH, HOST_TRIPLE, arch_of
from builder.layout import StagedApp
from builder.lock.model import Lock, TargetLock
from builder.locking.sdists import TOOL_GLIBC_FLOOR
from builder.sdist import BuildSystem, BuiltWheel, SdistInput, build_or_reuse


@dataclass(frozen=True, slots=True, kw_only=True)
class SdistSettings:
    """What the sdists phase takes from the build's options and the recipe."""

    recipe_path: Path  # for messages
    cache_dir: Path
    mirror: str | None
    progress: bool
    python_from_given: bool  # --python-from: no PBS interpreter of this machine to fetch
    source_date_epoch: int
    index_url: str


def sdist_sha(target: TargetLock, filename: str) -> str:
    return next(p.sha256 for p in target.packages if p.filename == filename)


def build_sdists(lock: Lock, target: TargetLock, options: SdistSettings, *,
                 interpreter: InterpreterSource, app: StagedApp, stage: Path,
                 log: Callable[[str], None]) -> dict[str, BuiltWheel]:
    """sdist file name -> its wheel, built offline from the locked build dependencies with
    the bundle's own interpreter of this machine's architecture (or taken from the cache)."""
    sdists = [p for p in target.packages if p.is_sdist]
    if not sdists:
        return {}
    native = arch_of(target.target) == HOST_ARCH
    host_target = lock.for_target(HOST_TRIPLE)
    if native:
        python_version = interpreter.python_version
    elif host_target is not None:
        python_version = host_target.interpreter.python_version
    else:
        python_version = lock.python
    runner_python: list[Path] = []

    def python() -> Path:
        """The interpreter that runs the backends (fetched for a cross target only once)."""
        if runner_python:
            return runner_python[0]
        if native:
            runner_python.append(app.interpreter)
        elif host_target is None or options.python_from_given:
            raise BuilderError(
                f"building {', '.join(p.filename for p in sdists)} for {target.target} needs "
                f"a CPython {lock.python} that runs on this machine ({HOST_ARCH})",
                where=str(options.recipe_path),
                hint=f"build the {HOST_ARCH}-unknown-linux-gnu target first with the same "
                "cache (pure-Python wheels built from sdists serve every target), or build "
                "without --python-from so the lock's interpreter for this machine is fetched")
        else:
            archive = fetch_interpreter(host_target.interpreter, cache_dir=options.cache_dir,
                                        mirror=options.mirror, progress=options.progress)
            extract_interpreter(archive, stage / "build-python")
            runner_python.append(app.layout.under(stage / "build-python").interpreter)
        return runner_python[0]

    built: dict[str, BuiltWheel] = {}
    for package in sdists:
        entry = lock.sdist(package.filename)
        deps = entry.deps_for(HOST_ARCH) if entry is not None else None
        if entry is None or deps is None:
            raise BuilderError(
                f"the lock pins no build dependencies of {package.filename} for this machine "
                f"({HOST_ARCH})", where=str(options.recipe_path),
                hint="lock again: builder lock RECIPE")
        deps_wheels = fetch_packages(deps, triple=HOST_TRIPLE,
                                     python_version=python_version,
                                     index_url=options.index_url, glibc_floor=TOOL_GLIBC_FLOOR,
                                     cache_dir=options.cache_dir, log=log)
        item = SdistInput(
            name=package.name, version=package.version,
            archive=fetch_sdist(package, cache_dir=options.cache_dir),
            sha256=package.sha256,
            build_system=BuildSystem(requires=entry.requires, backend=entry.backend,
                                     backend_path=entry.backend_path),
            requires=entry.requires,
            deps=tuple((w, p.sha256) for w, p in zip(deps_wheels, deps, strict=True)))
        wheel = build_or_reuse(item, python=python, python_version=python_version,
                               cache_dir=options.cache_dir,
                               source_date_epoch=options.source_date_epoch, log=log)
        if not wheel.pure and not native:
            raise BuilderError(
                f"{package.name} {package.version} is built from source and its wheel "
                f"({wheel.path.name}) holds native code: it can be built only for this "
                f"machine's architecture ({HOST_ARCH}), not {target.target}",
                where=str(options.recipe_path),
                hint=f"build the {arch_of(target.target)} bundle on an {arch_of(target.target)} "
                "machine, or pin a version that publishes a wheel for it")
        built[package.filename] = wheel
    return built
