"""``builder build``: recipe + lock -> interpreter -> install -> relocate -> bundle.

The only module that knows every stage; each stage stays ignorant of the ones after it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from builder import __version__
from builder.bundle.archive import write_archive
from builder.bundle.describe import TreeFacts, describe_tree, version_text
from builder.bundle.manifest import (
    BUNDLE_FORMAT_VERSION,
    InterpreterInfo,
    Manifest,
    PackageInfo,
    bundle_stem,
)
from builder.check import plan_checks, run_checks
from builder.elf import Patchelf
from builder.elf.read import parse_version
from builder.errors import BuilderError
from builder.fetch.interpreter import (
    InterpreterSource,
    extract_interpreter,
    fetch_interpreter,
    interpreter_from,
)
from builder.fetch.wheels import fetch_packages, fetch_wheels
from builder.fsutil import (
    atomic_output,
    atomic_write_text,
    canonical_json,
    rmtree,
    sha256_bytes,
    sha256_file,
)
from builder.install import install_wheels
from builder.install.wheels import InstalledDist
from builder.launch import (
    LaunchInfo,
    LaunchInputs,
    WheelhouseSet,
    apply_launch,
    entry_is_python,
    launch_digest,
    plan_launch,
)
from builder.lock.api import default_lock_dir, load_fresh_lock
from builder.lock.codec import lock_to_dict
from builder.lock.model import Lock, TargetLock
from builder.lock.resolve import HOST_ARCH, arch_of
from builder.node.stage import NODE_DIR, NodeStage, build_node_stage
from builder.recipe import Recipe, load_recipe, recipe_to_dict
from builder.relocate import leftover_error, relocate, scan_for_paths, select_pyc_compiler
from builder.sbom import SBOM_SUFFIX, collect_licenses, cyclonedx_sbom

SBOM_FORMAT = 1



@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    recipe_path: Path
    targets: tuple[str, ...]  # empty: the host's architecture
    out_dir: Path
    cache_dir: Path
    lock_dir: Path | None
    mirror: str | None
    python_from: Path | None
    source_date_epoch: int
    progress: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltBundle:
    target: str
    archive: Path
    sidecar: Path
    sbom: Path  # CycloneDX JSON beside the archive
    sha256: str
    size: int
    cached: bool  # True when an identical build already existed


def _select_targets(recipe: Recipe, wanted: tuple[str, ...]) -> tuple[str, ...]:
    if not wanted:
        native = f"{HOST_ARCH}-unknown-linux-gnu"
        if native not in recipe.targets.triples:
            raise BuilderError(
                f"this machine's target {native} is not in the recipe",
                where=recipe.path,
                hint=f"choose one with --target ({', '.join(recipe.targets.triples)})",
            )
        return (native,)
    if "all" in wanted:
        return recipe.targets.triples
    unknown = [t for t in wanted if t not in recipe.targets.triples]
    if unknown:
        raise BuilderError(
            f"target {', '.join(unknown)} is not in the recipe",
            where=recipe.path,
            hint=f"the recipe builds: {', '.join(recipe.targets.triples)}",
        )
    return tuple(sorted(set(wanted)))


def input_digest(recipe: Recipe, lock: Lock, target: TargetLock, *, interpreter_sha256: str,
                 source_date_epoch: int) -> str:
    """Everything the bundle's bytes depend on; the bundle is named after it."""
    lock_entry = lock_to_dict(lock, requirement_hashes={})
    inputs: dict[str, Any] = {
        "builder": __version__,
        "bundle_format": BUNDLE_FORMAT_VERSION,
        "recipe": recipe_to_dict(recipe),
        "lock": lock_entry["targets"][target.target],
        "interpreter_sha256": interpreter_sha256,
        "source_date_epoch": source_date_epoch,
    }
    if recipe.service is not None or recipe.node is not None:
        inputs["launch"] = launch_digest()
    if "node" in lock_entry:  # npm's lock digest; the toolchain and headers of this machine
        node = lock_entry["node"]
        inputs["node"] = {**node, "toolchain": node["toolchain"].get(HOST_ARCH),
                          "build_headers": node.get("build_headers", {}).get(HOST_ARCH)}
    inputs["sbom"] = SBOM_FORMAT  # licenses collected into the tree, SBOM beside the archive
    return "sha256:" + sha256_bytes(canonical_json(inputs).encode())


def build(options: BuildOptions, *, log: Callable[[str], None]) -> tuple[BuiltBundle, ...]:
    recipe = load_recipe(options.recipe_path)
    lock_dir = options.lock_dir or default_lock_dir(options.recipe_path, recipe.name)
    lock = load_fresh_lock(recipe, lock_dir=lock_dir)
    results = []
    for triple in _select_targets(recipe, options.targets):
        target = lock.for_target(triple)
        if target is None:
            raise BuilderError(f"the lock has no entry for {triple}",
                               where=str(lock_dir / "lock.json"),
                               hint=f"refresh it with: builder lock {recipe.path}")
        results.append(_build_target(recipe, lock, target, options, lock_dir=lock_dir, log=log))
    return tuple(results)


def _interpreter(target: TargetLock, options: BuildOptions, lock: Lock,
                 log: Callable[[str], None]) -> InterpreterSource:
    if options.python_from is not None:
        source = interpreter_from(options.python_from, cache_dir=options.cache_dir)
        minor = ".".join(source.python_version.split(".")[:2])
        if minor != lock.python:
            raise BuilderError(
                f"--python-from gives CPython {source.python_version}, but the lock is for "
                f"Python {lock.python}",
                where=str(options.python_from),
                hint=f"use a CPython {lock.python}.x (for example `builder runtime import "
                f"\"$(pyenv prefix {lock.python})\" --out DIR`)",
            )
        if arch_of(source.triple) != arch_of(target.target):
            raise BuilderError(
                f"--python-from gives an interpreter for {source.triple}, not {target.target}",
                where=str(options.python_from),
                hint="pass an interpreter built for the target architecture",
            )
        log(f"interpreter: {source.origin} CPython {source.python_version} ({source.archive})")
        return source
    pin = target.interpreter
    archive = fetch_interpreter(pin, cache_dir=options.cache_dir, mirror=options.mirror,
                                progress=options.progress)
    return InterpreterSource(archive=archive, sha256=pin.sha256,
                             python_version=pin.python_version, triple=pin.triple, origin="pbs")


def _build_target(recipe: Recipe, lock: Lock, target: TargetLock, options: BuildOptions,
                  *, lock_dir: Path, log: Callable[[str], None]) -> BuiltBundle:
    interpreter = _interpreter(target, options, lock, log)
    digest = input_digest(recipe, lock, target, interpreter_sha256=interpreter.sha256,
                          source_date_epoch=options.source_date_epoch)
    stem = bundle_stem(recipe.name, recipe.version, target.target, digest)
    archive = options.out_dir / f"{stem}.tar.zst"
    sidecar = options.out_dir / f"{stem}.json"
    sbom = options.out_dir / f"{stem}{SBOM_SUFFIX}"
    cached = _cached(archive, sidecar) if sbom.is_file() else None
    if cached is not None:
        log(f"up to date: {archive}")
        return BuiltBundle(target=target.target, archive=archive, sidecar=sidecar, sbom=sbom,
                           sha256=cached[0], size=cached[1], cached=True)

    wheels = fetch_wheels(target, index_url=recipe.packages.index_url,
                          glibc_floor=lock.glibc_floor, cache_dir=options.cache_dir, log=log)
    wheelhouse = _fetch_wheelhouse(recipe, lock, target, options, log)
    sha_by_wheel = {p.filename: p.sha256 for p in target.packages}
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix="builder-stage-"))
    try:
        bundle_root = stage / "bundle"
        app = bundle_root / "app"
        app.mkdir(parents=True)
        extract_interpreter(interpreter.archive, app)
        python_dir = app / "python"
        log(f"installing {len(wheels)} wheels")
        installed = install_wheels([(w, sha_by_wheel[w.name]) for w in wheels],
                                   python_dir=python_dir, minor=lock.python)
        log("relocating")
        patchelf = Patchelf.default()
        report = relocate(
            app,
            final_root=PurePosixPath(recipe.final_root),
            staging_root=stage,
            expose=recipe.packages.expose,
            patchelf=patchelf,
            compiler=select_pyc_compiler(
                app, PurePosixPath(f"python/bin/python{lock.python}"), minor=lock.python,
                host_python=Path(sys.executable),
            ),
        )
        _log_warnings(report.warnings, log)
        node = None
        if recipe.node is not None:
            node = _node_stage(recipe, lock, target, app=app, stage=stage, options=options,
                               lock_dir=lock_dir, log=log)
        launch = _launch_layer(recipe, lock, target, bundle_root, installed=installed,
                               wheelhouse=wheelhouse, log=log)
        facts = _describe(recipe, lock, target, bundle_root, origin=interpreter.origin, log=log)
        recipe_dict = recipe_to_dict(recipe)
        manifest = Manifest(
            name=recipe.name,
            version=recipe.version,
            summary=recipe.summary,
            target=target.target,
            arch=arch_of(target.target),
            libc="gnu",
            input_digest=digest,
            final_root=recipe.final_root,
            glibc_floor=version_text(facts.glibc_floor),
            glibc_floor_file=facts.glibc_floor_file,
            recipe_glibc_floor=recipe.targets.glibc_floor,
            glibc_exempt=facts.exempt,
            interpreter=InterpreterInfo(
                origin=interpreter.origin,
                python_version=interpreter.python_version,
                sha256=interpreter.sha256,
                filename=interpreter.archive.name,
                release=target.interpreter.release if interpreter.origin == "pbs" else None,
            ),
            packages=tuple(
                PackageInfo(name=d.name, version=d.version, sha256=d.sha256, wheel=d.wheel,
                            license=d.license)
                for d in installed
            ),
            ui={**recipe_dict["app"]["ui"], "description": recipe.summary},
            service=recipe_dict["service"],
            launch=launch,
            node=None if node is None else node.manifest(),
            file_count=facts.file_count,
            unpacked_bytes=facts.unpacked_bytes,
            source_date_epoch=options.source_date_epoch,
            builder_version=__version__,
        )
        manifest_dict = manifest.to_dict()
        (bundle_root / "manifest.json").write_text(canonical_json(manifest_dict),
                                                   encoding="utf-8")
        _check(recipe, lock, bundle_root, source_date_epoch=options.source_date_epoch, log=log)
        log("archiving")
        with atomic_output(archive) as tmp:
            write_archive(bundle_root, tmp, mtime=options.source_date_epoch)
            sha256 = sha256_file(tmp)
            size = tmp.stat().st_size
        atomic_write_text(sbom, canonical_json(cyclonedx_sbom(manifest_dict, app=app)))
        sidecar_dict = {**manifest_dict,
                        "archive": {"filename": archive.name, "sha256": sha256, "size": size}}
        atomic_write_text(sidecar, canonical_json(sidecar_dict))  # last: it vouches for both
    finally:
        rmtree(stage)
    return BuiltBundle(target=target.target, archive=archive, sidecar=sidecar, sbom=sbom,
                       sha256=sha256, size=size, cached=False)


def _check(recipe: Recipe, lock: Lock, bundle_root: Path, *, source_date_epoch: int,
           log: Callable[[str], None]) -> None:
    """The build-time checks on the finished tree; the archive is written only if they pass."""
    app = bundle_root / "app"
    plan = plan_checks(recipe, bundle_root=bundle_root, python=f"python/bin/python{lock.python}",
                       site_packages=PurePosixPath(_site_packages(app, lock).relative_to(app)))
    report = run_checks(plan, bundle_root=bundle_root, source_date_epoch=source_date_epoch,
                        log=log)
    log(f"checks passed ({report.seconds:.1f} s)")


def _site_packages(app: Path, lock: Lock) -> Path:
    return app / "python" / "lib" / f"python{lock.python}" / "site-packages"


def _describe(recipe: Recipe, lock: Lock, target: TargetLock, bundle_root: Path, *,
              origin: str, log: Callable[[str], None]) -> TreeFacts:
    """Licenses collected into the tree, then every file described and the floors checked."""
    app = bundle_root / "app"
    site_packages = _site_packages(app, lock)
    no_license = collect_licenses(app, site_packages=site_packages, stdlib=site_packages.parent)
    if no_license:
        log(f"note: no license file shipped by: {', '.join(no_license)}")
    node_exempt = () if recipe.node is None else tuple(
        f"{NODE_DIR}/{e.pattern}" for e in recipe.node.app.exempt)
    facts = describe_tree(bundle_root, arch=arch_of(target.target), site_packages=site_packages,
                          exempt=(*recipe.targets.glibc_exempt, *node_exempt))
    _check_floors(recipe, facts, origin=origin, log=log)
    return facts


def _node_stage(recipe: Recipe, lock: Lock, target: TargetLock, *, app: Path, stage: Path,
                options: BuildOptions, lock_dir: Path, log: Callable[[str], None]) -> NodeStage:
    """The ``[node]`` app into ``app/node`` (after relocation, which is Python's), then the same
    proof relocation gives: no file of the app holds the staging path."""
    node = build_node_stage(recipe, lock, lock_dir=lock_dir, app=app,
                            site_packages=_site_packages(app, lock), triple=target.target,
                            work_dir=stage / "node-work", cache_dir=options.cache_dir,
                            index_url=recipe.packages.index_url, log=log)
    needles = tuple(sorted({str(stage), os.path.realpath(stage), str(options.cache_dir.resolve())}))
    hits = scan_for_paths(app, needles)
    if hits:
        raise leftover_error(app, hits)
    return node


def _launch_layer(recipe: Recipe, lock: Lock, target: TargetLock, bundle_root: Path, *,
                  installed: tuple[InstalledDist, ...], wheelhouse: tuple[WheelhouseSet, ...],
                  log: Callable[[str], None]) -> LaunchInfo | None:
    """bin/launch, service-def.json, the s6 service and the wheelhouse (with a [service])."""
    if recipe.service is None:
        return None
    log("writing the launch layer")
    plan = plan_launch(LaunchInputs(
        recipe=recipe,
        arch=arch_of(target.target),
        python=f"python/bin/python{lock.python}",
        installed=tuple((d.name, d.version) for d in installed),
        entry_is_python=entry_is_python(bundle_root / "app", recipe.service.command[0],
                                        where=f"{recipe.path}: service.command"),
        platform_tags=target.platform_tags,
        wheelhouse=wheelhouse,
    ))
    apply_launch(plan, bundle_root)
    return plan.info


def _fetch_wheelhouse(recipe: Recipe, lock: Lock, target: TargetLock, options: BuildOptions,
                      log: Callable[[str], None]) -> tuple[WheelhouseSet, ...]:
    """The kernels' wheelhouse of the lock (wheels for the image's Python), hash-checked."""
    return tuple(
        WheelhouseSet(
            python=entry.python,
            requirements=tuple((p.name, p.version, p.sha256) for p in entry.packages),
            wheels=fetch_packages(entry.packages, triple=target.target,
                                  python_version=entry.python_version,
                                  index_url=recipe.packages.index_url,
                                  glibc_floor=lock.glibc_floor, cache_dir=options.cache_dir,
                                  log=log),
        )
        for entry in target.wheelhouse
    )


def _check_floors(recipe: Recipe, facts: TreeFacts, *, origin: str,
                  log: Callable[[str], None]) -> None:
    """Packages must stay within the recipe's floor; so must a PBS interpreter. An interpreter
    the user gave with --python-from keeps its own floor (recorded, with a warning)."""
    _check_floor(recipe, facts.package_glibc_floor, facts.package_glibc_floor_file,
                 what="installed packages")
    if origin == "pbs":
        _check_floor(recipe, facts.glibc_floor, facts.glibc_floor_file, what="the bundle")
    elif facts.glibc_floor and facts.glibc_floor > parse_version(recipe.targets.glibc_floor):
        log(f"warning: the interpreter from --python-from raises the glibc floor to "
            f"{version_text(facts.glibc_floor)} ({facts.glibc_floor_file}); the recipe "
            f"asks for {recipe.targets.glibc_floor}")


def _check_floor(recipe: Recipe, floor: tuple[int, ...] | None, culprit: str | None,
                 *, what: str) -> None:
    limit = parse_version(recipe.targets.glibc_floor)
    if floor is not None and floor > limit:
        raise BuilderError(
            f"{what} need glibc {version_text(floor)} ({culprit}), above the recipe's floor "
            f"{recipe.targets.glibc_floor}",
            where=f"{recipe.path}: targets.glibc_floor",
            hint="raise targets.glibc_floor in the recipe (and re-lock), or pin older packages",
        )


def _cached(archive: Path, sidecar: Path) -> tuple[str, int] | None:
    """An existing bundle for the same inputs, if its sidecar vouches for its bytes."""
    if not (archive.is_file() and sidecar.is_file()):
        return None
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))["archive"]
        size = archive.stat().st_size
        if recorded["size"] != size or recorded["sha256"] != sha256_file(archive):
            return None
        return str(recorded["sha256"]), size
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _log_warnings(warnings: tuple[str, ...], log: Callable[[str], None], shown: int = 5) -> None:
    for warning in warnings[:shown]:
        log(f"warning: {warning}")
    if len(warnings) > shown:
        log(f"warning: ... and {len(warnings) - shown} more like these")
