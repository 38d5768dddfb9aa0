"""``builder build``: the plan's phases run on a staging tree, then the archive is written.

The only module that knows every stage; each stage stays ignorant of the ones after it.
``plan`` decides (pure); this module does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from builder import __version__
from builder.bundle.archive import write_archive
from builder.bundle.describe import TreeFacts, describe_tree, drop_foreign, version_text
from builder.bundle.image import ImageInfo, ImageKind, find_tool, image_path, write_image
from builder.bundle.manifest import InterpreterInfo, Manifest, PackageInfo
from builder.bundle.record import RECORD_FILE, write_record
from builder.check import plan_checks, run_checks
from builder.elf import Patchelf
from builder.elf.read import parse_version
from builder.emulation import EMULATION_SLOWDOWN, check_can_run
from builder.errors import BuilderError, InternalError
from builder.fetch.interpreter import (
    InterpreterSource,
    extract_interpreter,
    fetch_interpreter,
    interpreter_from,
)
from builder.fetch.wheels import WHEELS_DIR, fetch_packages, fetch_wheels
from builder.fsutil import (
    atomic_output,
    atomic_write_text,
    canonical_json,
    sha256_file,
)
from builder.host import HOST_ARCH, arch_of
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
from builder.layout import APP, MANIFEST, AppLayout, StagedApp
from builder.lock.model import Lock, TargetLock
from builder.locking.api import default_lock_dir, load_fresh_lock
from builder.pipeline.node import NODE_DIR, NodeStage, build_node_stage
from builder.pipeline.plan import TargetPlan, plan_target, select_targets
from builder.pipeline.preflight import check_build_dirs
from builder.pipeline.sdists import SdistSettings, build_sdists, sdist_sha
from builder.recipe import Recipe, load_recipe, recipe_to_dict
from builder.recipe.icon import ICON_PATH, load_icon
from builder.relocate import leftover_error, relocate, scan_for_paths, select_pyc_compiler
from builder.sbom import collect_licenses, cyclonedx_sbom
from builder.scratch import STAGE_DIR, claimed_dir, collect
from builder.sdist import BuiltWheel
from builder.steps import StepsReport, run_build_steps


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
    image: ImageKind | None = None  # also write a mountable image of the bundle (--image)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltBundle:
    target: str
    archive: Path
    sidecar: Path
    sbom: Path  # CycloneDX JSON beside the archive
    sha256: str
    size: int
    cached: bool  # True when an identical build already existed
    image: ImageInfo | None = None  # with --image: the mountable image beside the archive


def build(options: BuildOptions, *, log: Callable[[str], None]) -> tuple[BuiltBundle, ...]:
    recipe = load_recipe(options.recipe_path)
    icon = load_icon(recipe)  # a bad icon fails before any download
    lock_dir = options.lock_dir or default_lock_dir(options.recipe_path, recipe.name)
    lock = load_fresh_lock(recipe, lock_dir=lock_dir)
    check_build_dirs(out_dir=options.out_dir, cache_dir=options.cache_dir)
    if options.image is not None:
        find_tool(options.image)  # missing: a clear error before anything is built
    collect_leftovers(options, log=log)
    results = []
    for triple in select_targets(recipe, options.targets, host_arch=HOST_ARCH):
        target = lock.for_target(triple)
        if target is None:
            raise BuilderError(f"the lock has no entry for {triple}",
                               where=str(lock_dir / "lock.json"),
                               hint=f"refresh it with: builder lock {recipe.path}")
        interpreter = _interpreter(target, options, lock, log)
        plan = plan_target(
            recipe, lock, target, out_dir=options.out_dir, interpreter_sha256=interpreter.sha256,
            source_date_epoch=options.source_date_epoch, host_arch=HOST_ARCH,
            launch_digest=launch_digest() if recipe.service or recipe.node else None,
            icon=icon)
        results.append(_build_target(recipe, lock, plan, interpreter, options,
                                     lock_dir=lock_dir, log=log))
    return tuple(results)


def collect_leftovers(options: BuildOptions, *, log: Callable[[str], None]) -> None:
    """Remove what interrupted builds left (staging trees, downloads, ``.tmp`` beside
    archives) once their owner process is gone; a build running beside us keeps its own."""
    for parent in (options.cache_dir / STAGE_DIR, options.cache_dir / WHEELS_DIR,
                   options.out_dir):
        removed = collect(parent)
        if removed:
            log(f"removed {len(removed)} leftover(s) of interrupted builds in {parent}")


def _interpreter(target: TargetLock, options: BuildOptions, lock: Lock,
                 log: Callable[[str], None]) -> InterpreterSource:
    if options.python_from is not None:
        source = interpreter_from(options.python_from, cache_dir=options.cache_dir, log=log)
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


@dataclass(slots=True, kw_only=True)
class _Staging:
    """One target's build in progress: the staged tree and what each phase found. The only
    mutable state of a build, filled phase by phase and dropped with the staging directory."""

    stage: Path
    bundle_root: Path
    app: StagedApp
    wheels: tuple[Path, ...]
    wheelhouse: tuple[WheelhouseSet, ...]
    built: dict[str, BuiltWheel] = field(default_factory=dict)
    installed: tuple[InstalledDist, ...] = ()
    steps: StepsReport | None = None
    node: NodeStage | None = None
    launch: LaunchInfo | None = None
    manifest: dict[str, Any] | None = None
    result: tuple[str, int] | None = None  # the archive's sha256 and size
    image: ImageInfo | None = None  # with --image


def _build_target(recipe: Recipe, lock: Lock, plan: TargetPlan,
                  interpreter: InterpreterSource, options: BuildOptions, *, lock_dir: Path,
                  log: Callable[[str], None]) -> BuiltBundle:
    target = plan.target
    cached = _cached(plan.archive, plan.sidecar) if plan.sbom.is_file() else None
    if cached is not None:
        log(f"up to date: {plan.archive}")
        image = None if options.image is None else _cached_image(plan, options, log)
        return BuiltBundle(target=target.target, archive=plan.archive, sidecar=plan.sidecar,
                           sbom=plan.sbom, sha256=cached[0], size=cached[1], cached=True,
                           image=image)
    wheels = fetch_wheels(target, index_url=recipe.packages.index_url,
                          glibc_floor=lock.glibc_floor, cache_dir=options.cache_dir, log=log)
    wheelhouse = _fetch_wheelhouse(recipe, lock, target, options, log)
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    with claimed_dir(options.cache_dir / STAGE_DIR, prefix="builder-stage-") as stage:
        bundle_root = stage / "bundle"
        app = bundle_root / APP
        app.mkdir(parents=True)
        state = _Staging(stage=stage, bundle_root=bundle_root,
                         app=AppLayout(lock.python).under(app), wheels=wheels,
                         wheelhouse=wheelhouse)
        run = _Phases(recipe=recipe, lock=lock, plan=plan, interpreter=interpreter,
                      options=options, lock_dir=lock_dir, state=state, log=log)
        total = time.monotonic()
        # the interpreter first: every phase works on it (the sdists are built by it)
        extract_interpreter(interpreter.archive, app)
        log(f"interpreter: {time.monotonic() - total:.1f}s")
        for phase in plan.phases:
            start = time.monotonic()
            getattr(run, phase.value)()
            log(f"{phase.value}: {time.monotonic() - start:.1f}s")
        log(f"built in {time.monotonic() - total:.1f}s ({', '.join(plan.phases)})")
        if state.result is None:
            raise InternalError("the archive phase did not run")
        sha256, size = state.result
    return BuiltBundle(target=target.target, archive=plan.archive, sidecar=plan.sidecar,
                       sbom=plan.sbom, sha256=sha256, size=size, cached=False,
                       image=state.image)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Phases:
    """Each phase of the plan as a method of the same name (``Phase`` values)."""

    recipe: Recipe
    lock: Lock
    plan: TargetPlan
    interpreter: InterpreterSource
    options: BuildOptions
    lock_dir: Path
    state: _Staging
    log: Callable[[str], None]

    def sdists(self) -> None:
        options = self.options
        self.state.built = build_sdists(
            self.lock, self.plan.target, SdistSettings(
                recipe_path=options.recipe_path, cache_dir=options.cache_dir,
                mirror=options.mirror, progress=options.progress,
                python_from_given=options.python_from is not None,
                source_date_epoch=options.source_date_epoch,
                index_url=self.recipe.packages.index_url),
            interpreter=self.interpreter, app=self.state.app, stage=self.state.stage,
            log=self.log)

    def install(self) -> None:
        # from here on the bundle's own interpreter runs (steps, checks): for another
        # architecture that needs qemu. Checked only now, so that what no emulator can fix (a
        # native sdist for another architecture, refused by the sdists phase) is said first.
        check_can_run(arch_of(self.plan.target.target), HOST_ARCH)
        s = self.state
        sha_by_wheel = {p.filename: p.sha256 for p in self.plan.target.packages}
        self.log(f"installing {len(s.wheels) + len(s.built)} wheels")
        s.installed = install_wheels(
            [*((w, sha_by_wheel[w.name]) for w in s.wheels),
             *((b.path, b.sha256) for b in s.built.values())],
            python_dir=s.app.python, minor=self.lock.python)

    def steps(self) -> None:
        """The recipe's [build] steps in the installed app, before relocation (so what they
        write is relocated and scanned like the rest); each runs twice to prove it is
        reproducible."""
        s = self.state
        self.log(f"running {len(self.recipe.build.steps)} build steps")
        s.steps = run_build_steps(self.recipe.build.steps, app=s.app.app,
                                  python_bin=s.app.python_bin,
                                  source_date_epoch=self.options.source_date_epoch,
                                  where=self.recipe.path, scratch=s.stage, log=self.log)

    def relocate(self) -> None:
        s = self.state
        report = relocate(
            s.app.app,
            final_root=PurePosixPath(self.recipe.final_root),
            staging_root=s.stage,
            expose=self.recipe.packages.expose,
            patchelf=Patchelf.default(),
            compiler=select_pyc_compiler(
                s.app.app, s.app.layout.interpreter, minor=self.lock.python,
                host_python=Path(sys.executable),
            ),
            # a leftover staging path names the build step that wrote it
            origins=s.steps.origins() if s.steps is not None else None,
        )
        _log_warnings(report.warnings, self.log)

    def node(self) -> None:
        self.state.node = _node_stage(self.recipe, self.lock, self.plan.target,
                                      app=self.state.app, stage=self.state.stage,
                                      options=self.options, lock_dir=self.lock_dir,
                                      log=self.log)

    def launch(self) -> None:
        self.state.launch = _launch_layer(self.recipe, self.lock, self.plan.target,
                                          self.state.bundle_root, installed=self.state.installed,
                                          wheelhouse=self.state.wheelhouse, log=self.log)

    def describe(self) -> None:
        s, recipe, target = self.state, self.recipe, self.plan.target
        icon = self.plan.icon
        if icon is not None:  # before the tree is described: it is one of its files
            path = s.bundle_root / ICON_PATH
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(icon.data)
            path.chmod(0o644)
        facts = _describe(recipe, target, s.bundle_root, s.app,
                          origin=self.interpreter.origin, log=self.log)
        # last write to the tree before the manifest: the RECORD (counted in sizes too)
        record_sha, record_bytes, record_entries = write_record(s.bundle_root)
        sdist_of = {b.path.name: (n, sdist_sha(target, n)) for n, b in s.built.items()}
        recipe_dict = recipe_to_dict(recipe)
        interpreter = self.interpreter
        manifest = Manifest(
            name=recipe.name,
            version=recipe.version,
            summary=recipe.summary,
            target=target.target,
            arch=arch_of(target.target),
            libc="gnu",
            input_digest=self.plan.digest,
            final_root=recipe.final_root,
            glibc_floor=version_text(facts.glibc_floor),
            glibc_floor_file=facts.glibc_floor_file,
            recipe_glibc_floor=recipe.targets.glibc_floor,
            glibc_exempt=facts.exempt,
            dropped=facts.dropped,
            interpreter=InterpreterInfo(
                origin=interpreter.origin,
                python_version=interpreter.python_version,
                sha256=interpreter.sha256,
                filename=interpreter.archive.name,
                release=target.interpreter.release if interpreter.origin == "pbs" else None,
            ),
            packages=tuple(
                PackageInfo(name=d.name, version=d.version, sha256=d.sha256, wheel=d.wheel,
                            license=d.license, sdist=sdist_of.get(d.wheel))
                for d in s.installed
            ),
            ui={**recipe_dict["app"]["ui"], "description": recipe.summary,
                "icon": None if icon is None else ICON_PATH,
                **({} if icon is None else {"icon_128": icon.base64})},
            service=recipe_dict["service"],
            launch=s.launch,
            node=None if s.node is None else s.node.manifest(),
            file_count=facts.file_count + 1,
            unpacked_bytes=facts.unpacked_bytes + record_bytes,
            record={"file": RECORD_FILE, "sha256": record_sha, "entries": record_entries},
            source_date_epoch=self.options.source_date_epoch,
            builder_version=__version__,
        )
        s.manifest = manifest.to_dict()
        (s.bundle_root / MANIFEST).write_text(canonical_json(s.manifest), encoding="utf-8")

    def checks(self) -> None:
        """The build-time checks on the finished tree; the archive is written only if they
        pass."""
        s, layout = self.state, self.state.app.layout
        plan = plan_checks(self.recipe, bundle_root=s.bundle_root, python=str(layout.interpreter),
                           site_packages=layout.site_packages)
        if arch_of(self.plan.target.target) != HOST_ARCH:
            plan = replace(plan, timeout=plan.timeout * EMULATION_SLOWDOWN)
            self.log(f"checks: the {arch_of(self.plan.target.target)} interpreter runs under "
                     f"qemu-user, each bound is {EMULATION_SLOWDOWN}x checks.timeout "
                     f"({plan.timeout} s)")
        report = run_checks(plan, bundle_root=s.bundle_root,
                            source_date_epoch=self.options.source_date_epoch, scratch=s.stage,
                            log=self.log)
        self.log(f"checks passed ({report.seconds:.1f} s)")

    def archive(self) -> None:
        s, plan = self.state, self.plan
        if s.manifest is None:
            raise InternalError("the describe phase did not run before archive")
        self.log("archiving")
        with atomic_output(plan.archive) as tmp:
            write_archive(s.bundle_root, tmp, mtime=self.options.source_date_epoch)
            sha256 = sha256_file(tmp)
            size = tmp.stat().st_size
        atomic_write_text(plan.sbom, canonical_json(cyclonedx_sbom(s.manifest, app=s.app.app)))
        if self.options.image is not None:
            s.image = _image_of(plan.archive, self.options, work=s.stage / "image",
                                log=self.log)
        _write_sidecar(plan.sidecar, s.manifest, archive=plan.archive.name, sha256=sha256,
                       size=size, image=s.image)
        s.result = (sha256, size)


def _write_sidecar(path: Path, manifest: dict[str, Any], *, archive: str, sha256: str,
                   size: int, image: ImageInfo | None) -> None:
    """The manifest, the archive's sha256 and size, and the image's (written last: it vouches
    for them all)."""
    sidecar = {**manifest, "archive": {"filename": archive, "sha256": sha256, "size": size}}
    if image is not None:
        sidecar["image"] = image.to_dict()
    atomic_write_text(path, canonical_json(sidecar))


def _image_of(archive: Path, options: BuildOptions, *, work: Path,
              log: Callable[[str], None]) -> ImageInfo:
    """The image of the archive just written (or vouched for by its sidecar), beside it."""
    if options.image is None:  # pragma: no cover (callers check)
        raise InternalError("no image kind asked for")
    dest = image_path(archive, options.image)
    log(f"writing the {options.image} image")
    work.mkdir()
    with atomic_output(dest) as tmp:
        info = write_image(archive, tmp, kind=options.image, mtime=options.source_date_epoch,
                           work=work)
    return replace(info, filename=dest.name)


def _cached_image(plan: TargetPlan, options: BuildOptions,
                  log: Callable[[str], None]) -> ImageInfo:
    """An up-to-date bundle asked for with --image: its image if the sidecar vouches for it,
    else made now from the archive and added to the sidecar."""
    if options.image is None:  # pragma: no cover (callers check)
        raise InternalError("no image kind asked for")
    sidecar = json.loads(plan.sidecar.read_text(encoding="utf-8"))  # _cached read it already
    dest = image_path(plan.archive, options.image)
    recorded = sidecar.get("image")
    if (isinstance(recorded, dict) and recorded.get("kind") == options.image
            and recorded.get("filename") == dest.name and dest.is_file()
            and recorded.get("size") == dest.stat().st_size
            and recorded.get("sha256") == sha256_file(dest)):
        return ImageInfo(kind=options.image, filename=dest.name, sha256=recorded["sha256"],
                         size=recorded["size"], tool=str(recorded.get("tool")))
    with claimed_dir(options.cache_dir / STAGE_DIR, prefix="builder-image-") as stage:
        image = _image_of(plan.archive, options, work=stage / "image", log=log)
    manifest = {k: v for k, v in sidecar.items() if k not in ("archive", "image")}
    archive = sidecar["archive"]
    _write_sidecar(plan.sidecar, manifest, archive=archive["filename"],
                   sha256=archive["sha256"], size=archive["size"], image=image)
    return image


def _describe(recipe: Recipe, target: TargetLock, bundle_root: Path, app: StagedApp, *,
              origin: str, log: Callable[[str], None]) -> TreeFacts:
    """Licenses collected into the tree, then every file described and the floors checked."""
    site_packages = app.site_packages
    no_license = collect_licenses(app.app, site_packages=site_packages,
                                  stdlib=site_packages.parent)
    if no_license:
        log(f"note: no license file shipped by: {', '.join(no_license)}")
    node_exempt = () if recipe.node is None else tuple(
        f"{NODE_DIR}/{e.pattern}" for e in recipe.node.app.exempt)
    exempt = (*recipe.targets.glibc_exempt, *node_exempt)
    dropped = drop_foreign(bundle_root, arch=arch_of(target.target), exempt=exempt)
    if dropped:
        log(f"dropped {len(dropped)} exempt file(s) of another architecture than "
            f"{arch_of(target.target)} (listed in the manifest):\n  "
            + "\n  ".join(f"{f} ({a})" for f, a in dropped))
    facts = describe_tree(bundle_root, arch=arch_of(target.target), site_packages=site_packages,
                          exempt=exempt)
    facts = replace(facts, dropped=dropped)
    _check_floors(recipe, facts, origin=origin, log=log)
    return facts


def _node_stage(recipe: Recipe, lock: Lock, target: TargetLock, *, app: StagedApp,
                stage: Path, options: BuildOptions, lock_dir: Path,
                log: Callable[[str], None]) -> NodeStage:
    """The ``[node]`` app into ``app/node`` (after relocation, which is Python's), then the same
    proof relocation gives: no file of the app holds the staging path."""
    node = build_node_stage(recipe, lock, lock_dir=lock_dir, app=app.app,
                            site_packages=app.site_packages, triple=target.target,
                            work_dir=stage / "node-work", cache_dir=options.cache_dir,
                            index_url=recipe.packages.index_url, log=log)
    needles = tuple(sorted({str(stage), os.path.realpath(stage), str(options.cache_dir.resolve())}))
    hits = scan_for_paths(app.app, needles)
    if hits:
        raise leftover_error(app.app, hits)
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
        python=str(AppLayout(lock.python).interpreter),
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
