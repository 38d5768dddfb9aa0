"""The build plan: which targets, what each is named after, and its ordered phases. Pure.

Everything here is decided from the recipe, the lock, the options and the interpreter's
sha256, before any byte is staged; ``execute`` then runs the phases. Phases are Nix's:
install (sdists built to wheels first), build steps (postInstall), relocate, the Node.js app,
the launch layer, describe, checks (installCheck), archive. A phase with nothing to do for a
recipe is not in its plan, so the log shows what really ran.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from builder import __version__
from builder.bundle.manifest import BUNDLE_FORMAT_VERSION, bundle_stem
from builder.errors import BuilderError
from builder.fsutil import canonical_json, sha256_bytes
from builder.lock.codec import lock_to_dict
from builder.lock.model import Lock, TargetLock
from builder.recipe import Recipe, recipe_to_dict
from builder.recipe.icon import Icon
from builder.recipe.model import Protocol
from builder.sbom import SBOM_SUFFIX

SBOM_FORMAT = 1
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # builder/
CODE_SUFFIXES = (".py", ".json", ".sh", ".js", ".c")


@cache
def code_digest(root: Path = PACKAGE_ROOT) -> str:
    """sha256 over builder's own code and data files (relative paths and bytes, sorted): a
    change to the builder changes every bundle's name, so a cached bundle made by other code is
    never returned for unchanged recipe and lock (``__version__`` alone does not move)."""
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in CODE_SUFFIXES
                       and "__pycache__" not in p.parts and p.is_file()):
        parts.append(f"{path.relative_to(root).as_posix()}\0{sha256_bytes(path.read_bytes())}")
    return sha256_bytes("\n".join(parts).encode())


class Phase(enum.StrEnum):
    SDISTS = "sdists"  # wheels built from the lock's source distributions
    INSTALL = "install"  # the interpreter extracted, every wheel installed
    STEPS = "steps"  # the recipe's [build] steps
    RELOCATE = "relocate"  # shebangs, RPATHs, vendored libraries, .pyc, app/bin
    NODE = "node"  # the recipe's [node] app into app/node
    LAUNCH = "launch"  # bin/launch, service-def.json, the s6 service, the wheelhouse
    DESCRIBE = "describe"  # licenses, ELF floors, the manifest
    CHECKS = "checks"  # imports, the recipe's check commands, the service answers
    ARCHIVE = "archive"  # the .tar.zst, its SBOM and sidecar


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetPlan:
    target: TargetLock
    digest: str  # "sha256:..." over every input of the bundle's bytes
    stem: str  # <name>-<version>-<target>-<digest prefix>
    archive: Path
    sidecar: Path
    sbom: Path
    phases: tuple[Phase, ...]
    icon: Icon | None = None  # the recipe's, checked; shipped at app/share/icon-128.png


def select_targets(recipe: Recipe, wanted: tuple[str, ...], *, host_arch: str
                   ) -> tuple[str, ...]:
    """The triples to build: the host's (none given), every one ("all") or those named. With
    several, the host's comes first: wheels it builds from pure-Python sdists serve the rest."""
    if not wanted:
        native = f"{host_arch}-unknown-linux-gnu"
        if native not in recipe.targets.triples:
            raise BuilderError(
                f"this machine's target {native} is not in the recipe",
                where=recipe.path,
                hint=f"choose one with --target ({', '.join(recipe.targets.triples)})",
            )
        return (native,)
    if "all" in wanted:
        chosen = recipe.targets.triples
    else:
        unknown = [t for t in wanted if t not in recipe.targets.triples]
        if unknown:
            raise BuilderError(
                f"target {', '.join(unknown)} is not in the recipe",
                where=recipe.path,
                hint=f"the recipe builds: {', '.join(recipe.targets.triples)}",
            )
        chosen = tuple(sorted(set(wanted)))
    return tuple(sorted(chosen, key=lambda t: (not t.startswith(f"{host_arch}-"), t)))


def phases_for(recipe: Recipe, target: TargetLock) -> tuple[Phase, ...]:
    """The ordered phases this recipe needs for this target."""
    wanted = {
        Phase.SDISTS: any(p.is_sdist for p in target.packages),
        Phase.INSTALL: True,
        Phase.STEPS: bool(recipe.build.steps),
        Phase.RELOCATE: True,
        Phase.NODE: recipe.node is not None,
        Phase.LAUNCH: recipe.service is not None,
        Phase.DESCRIBE: True,
        Phase.CHECKS: has_checks(recipe),
        Phase.ARCHIVE: True,
    }
    return tuple(phase for phase in Phase if wanted[phase])


def has_checks(recipe: Recipe) -> bool:
    checks = recipe.checks
    service = (checks.service and recipe.service is not None
               and recipe.service.protocol is Protocol.HTTP)
    return checks.imports or bool(checks.commands) or service


def input_digest(recipe: Recipe, lock: Lock, target: TargetLock, *, interpreter_sha256: str,
                 source_date_epoch: int, host_arch: str, launch_digest: str | None,
                 icon_sha256: str | None = None) -> str:
    """Everything the bundle's bytes depend on; the bundle is named after it.

    ``launch_digest``: the launcher's own files (recipes with a service or a Node.js app);
    ``icon_sha256``: the recipe's icon file (its path alone is in the recipe)."""
    lock_entry = lock_to_dict(lock, requirement_hashes={})
    inputs: dict[str, Any] = {
        "builder": __version__,
        "builder_code": code_digest(),
        "bundle_format": BUNDLE_FORMAT_VERSION,
        "recipe": recipe_to_dict(recipe),
        "lock": lock_entry["targets"][target.target],
        "interpreter_sha256": interpreter_sha256,
        "source_date_epoch": source_date_epoch,
    }
    if launch_digest is not None:
        inputs["launch"] = launch_digest
    if icon_sha256 is not None:
        inputs["icon"] = icon_sha256
    if "node" in lock_entry:  # npm's lock digest; the toolchain and headers of this machine
        node = lock_entry["node"]
        inputs["node"] = {**node, "toolchain": node["toolchain"].get(host_arch),
                          "build_headers": node.get("build_headers", {}).get(host_arch)}
    sdists = {p.filename for p in target.packages if p.is_sdist}
    if sdists:  # how each is built here: backend and this machine's build dependencies
        inputs["sdists"] = {
            name: {**entry, "build_deps": entry["build_deps"].get(host_arch)}
            for name, entry in lock_entry["sdists"].items() if name in sdists}
    inputs["sbom"] = SBOM_FORMAT  # licenses collected into the tree, SBOM beside the archive
    return "sha256:" + sha256_bytes(canonical_json(inputs).encode())


def plan_target(recipe: Recipe, lock: Lock, target: TargetLock, *, out_dir: Path,
                interpreter_sha256: str, source_date_epoch: int, host_arch: str,
                launch_digest: str | None, icon: Icon | None = None) -> TargetPlan:
    digest = input_digest(recipe, lock, target, interpreter_sha256=interpreter_sha256,
                          source_date_epoch=source_date_epoch, host_arch=host_arch,
                          launch_digest=launch_digest,
                          icon_sha256=None if icon is None else icon.sha256)
    stem = bundle_stem(recipe.name, recipe.version, target.target, digest)
    return TargetPlan(
        target=target,
        digest=digest,
        stem=stem,
        archive=out_dir / f"{stem}.tar.zst",
        sidecar=out_dir / f"{stem}.json",
        sbom=out_dir / f"{stem}{SBOM_SUFFIX}",
        phases=phases_for(recipe, target),
        icon=icon,
    )
