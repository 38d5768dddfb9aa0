"""``builder lock``: pin the interpreter and resolve every target of a recipe."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.lock.codec import read_lock, write_lock
from builder.lock.model import Lock, SdistLock, TargetLock
from builder.locking.node import check_npm_lock, lock_node
from builder.locking.pbs import resolve_pin
from builder.locking.resolve import resolve_target
from builder.locking.sdists import lock_sdists
from builder.recipe import Recipe, lock_digest
from builder.scratch import STAGE_DIR, collect


def default_lock_dir(recipe_path: Path, name: str) -> Path:
    """``lockfiles/<name>`` beside the ``recipes/`` folder holding the recipe (or beside it)."""
    parent = recipe_path.resolve().parent
    base = parent.parent if parent.name == "recipes" else parent
    return base / "lockfiles" / name


def refresh_command(recipe: Recipe) -> str:
    """The command that refreshes the lock, with the recipe path as a user in the project
    root would type it (so the generated files do not depend on how builder was invoked)."""
    path = Path(recipe.path).resolve()
    root = path.parent.parent if path.parent.name == "recipes" else path.parent
    return f"builder lock {os.path.relpath(path, root)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    lock: Lock
    path: Path
    seconds: dict[str, float]  # per target


def lock_recipe(
    recipe: Recipe,
    *,
    lock_dir: Path,
    cache_dir: Path,
    mirror: str | None,
    log: Callable[[str], None] = lambda _msg: None,
) -> LockResult:
    # what a killed lock or build left in the cache's scratch (pip reports, unpacked sdists)
    removed = collect(cache_dir / STAGE_DIR)
    if removed:
        log(f"removed {len(removed)} leftover(s) of interrupted runs in {cache_dir / STAGE_DIR}")
    targets: list[TargetLock] = []
    seconds: dict[str, float] = {}
    for triple in recipe.targets.triples:
        start = time.perf_counter()
        pin = resolve_pin(
            python_minor=recipe.runtime.python,
            release=recipe.runtime.pbs_release,
            triple=triple,
            flavor=recipe.runtime.flavor,
            mirror=mirror,
        )
        target = resolve_target(recipe, pin, cache_dir=cache_dir)
        seconds[triple] = time.perf_counter() - start
        log(f"locked {triple}: {len(target.packages)} packages, CPython {pin.python_version} "
            f"({seconds[triple]:.1f}s)")
        targets.append(target)
    sdists: tuple[SdistLock, ...] = ()
    if any(p.is_sdist for t in targets for p in t.packages):
        start = time.perf_counter()
        sdists = lock_sdists(targets, python_version=targets[0].interpreter.python_version,
                             index_url=recipe.packages.index_url, cache_dir=cache_dir,
                             where=recipe.path, log=log)
        seconds["sdists"] = time.perf_counter() - start
    node = None
    if recipe.node is not None:
        start = time.perf_counter()
        node = lock_node(recipe, targets=targets, lock_dir=lock_dir, cache_dir=cache_dir,
                         log=log)
        seconds["node"] = time.perf_counter() - start
        log(f"locked {node.requirement}: npm lock {node.npm_lock[:19]}..., toolchain "
            f"{', '.join(f'{a}: {p.filename}' for a, p in node.toolchain)}")
    lock = Lock(
        recipe_name=recipe.name,
        recipe_digest=lock_digest(recipe),
        python=recipe.runtime.python,
        glibc_floor=recipe.targets.glibc_floor,
        targets=tuple(targets),
        node=node,
        sdists=sdists,
    )
    path = write_lock(lock, lock_dir, refresh_command=refresh_command(recipe))
    return LockResult(lock=lock, path=path, seconds=seconds)


def load_fresh_lock(recipe: Recipe, *, lock_dir: Path, upgrade: bool = False) -> Lock:
    """The committed lock, refused when the recipe changed since it was made (or when it is
    not intact: see ``codec.read_lock``)."""
    command = refresh_command(recipe)
    lock = read_lock(lock_dir, refresh_command=command, upgrade=upgrade)
    if lock.recipe_digest != lock_digest(recipe) or lock.recipe_name != recipe.name:
        raise BuilderError(
            "the lock is stale: the recipe's requirements, runtime or targets changed since it "
            "was made",
            where=str(lock_dir / "lock.json"),
            hint=f"refresh it with: {command}",
        )
    if recipe.node is not None:
        check_npm_lock(recipe, lock_dir=lock_dir, recorded=lock.node, refresh_command=command)
    return lock


def upgrade_lock(recipe: Recipe, *, lock_dir: Path) -> Path:
    """``builder lock RECIPE --upgrade``: rewrite a fresh lock of an older format in the
    current one (adding its integrity digest), offline; every pin is kept as it is."""
    lock = load_fresh_lock(recipe, lock_dir=lock_dir, upgrade=True)
    return write_lock(lock, lock_dir, refresh_command=refresh_command(recipe))
