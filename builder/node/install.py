"""Install a Node.js app from its committed locks only, then build its native modules.

Plan, then apply. :func:`plan_install` turns the spec into steps (pure, tested as data):

1. seed the root ``package.json`` + ``package-lock.json``; ``npm ci --ignore-scripts --omit=dev``
   (downloads, each tarball checked against its sha512 integrity; no script runs);
2. per nested project: check its ``package.json`` (from the app tarball) is the one locked,
   replace the package's own shrinkwrap with our lock, ``npm ci --ignore-scripts --omit=dev``;
3. the symlinks the app's postinstall would make;
4. ``npm rebuild`` per project, offline, with the zig toolchain and ``build-from-source``:
   only install scripts an ``allowScripts`` policy approves run (``strict-allow-scripts``),
   and node-gyp compiles against the bundled Node's headers (``npm_config_nodedir``);
5. the projects' own scripts (e.g. the extensions' postinstall), offline;
6. drop prebuilt binaries the source builds supersede.
"""

from __future__ import annotations

import fnmatch
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from builder.errors import BuilderError
from builder.node.lockfile import PACKAGE_JSON, PACKAGE_LOCK, SHRINKWRAP, NodeLock
from builder.node.nodejs_wheel import NodeRuntime
from builder.recipe.node import NodeAppSpec
from builder.tools.run import Runner, run_checked


class Action(StrEnum):
    SEED = "seed"  # copy a project's locked package.json/package-lock.json into place
    NPM = "npm"  # node npm-cli.js ARGS in the project directory
    LINK = "link"  # make a symlink
    DROP = "drop"  # remove paths matching a glob


class Phase(StrEnum):
    FETCH = "fetch"  # may use the network (the registry)
    BUILD = "build"  # offline, with the toolchain


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    action: Action
    path: str  # relative to the install root: the project (SEED/NPM), link or glob
    args: tuple[str, ...] = ()  # npm arguments; the link target for LINK
    phase: Phase = Phase.BUILD
    source: str = ""  # SEED: the lock directory, relative to the lock dir ("" for the root)

    def describe(self) -> str:
        where = self.path or "."
        if self.action is Action.NPM:
            return f"npm {' '.join(self.args)}  (in {where})"
        if self.action is Action.LINK:
            return f"link {where} -> {self.args[0]}"
        return f"{self.action} {where}"


CI = ("ci", "--ignore-scripts", "--omit=dev")


def plan_install(spec: NodeAppSpec) -> tuple[Step, ...]:
    steps = [Step(action=Action.SEED, path="", phase=Phase.FETCH, source=""),
             Step(action=Action.NPM, path="", args=CI, phase=Phase.FETCH)]
    for rel, project in zip(spec.nested, spec.nested_dirs, strict=True):
        steps.append(Step(action=Action.SEED, path=project, phase=Phase.FETCH,
                          source=f"nested/{rel}"))
        steps.append(Step(action=Action.NPM, path=project, args=CI, phase=Phase.FETCH))
    steps.extend(Step(action=Action.LINK, path=link.path, args=(link.target,))
                 for link in spec.links)
    for project in ("", *spec.nested_dirs):
        steps.append(Step(action=Action.NPM, path=project, args=("rebuild",)))
    steps.extend(Step(action=Action.NPM, path=script.project, args=("run", script.script))
                 for script in spec.scripts)
    steps.extend(Step(action=Action.DROP, path=pattern) for pattern in spec.drop)
    return tuple(steps)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    step: Step
    seconds: float
    output: str  # the command's output (npm, node-gyp), empty for file steps


def apply_install(
    steps: tuple[Step, ...],
    *,
    lock: NodeLock,
    runtime: NodeRuntime,
    dest: Path,
    envs: Mapping[Phase, Mapping[str, str]],
    runner: Runner,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[StepResult, ...]:
    """Run ``steps`` into ``dest`` (the install root, created)."""
    dest.mkdir(parents=True, exist_ok=True)
    results = []
    for step in steps:
        log(step.describe())
        start = time.monotonic()
        output = ""
        if step.action is Action.SEED:
            _seed(lock.lock_dir / step.source if step.source else lock.lock_dir,
                  dest / step.path, first=not step.path)
        elif step.action is Action.NPM:
            proc = run_checked(runner, runtime.npm_argv(*step.args), cwd=dest / step.path,
                               env=envs[step.phase], what=step.describe())
            output = proc.stdout or ""
        elif step.action is Action.LINK:
            link = dest / step.path
            if not link.parent.is_dir():
                raise BuilderError(f"cannot link {step.path}: no such directory",
                                   hint="the app's layout changed; update node.links")
            link.unlink(missing_ok=True)
            link.symlink_to(step.args[0])
        else:
            for path in matching(dest, step.path):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        seconds = time.monotonic() - start
        if step.action is Action.NPM:
            log(f"{step.describe()}: {seconds:.1f} s")
        results.append(StepResult(step=step, seconds=seconds, output=output))
    return tuple(results)


def _seed(source: Path, project: Path, *, first: bool) -> None:
    """Put the locked files in ``project``; a nested project must match its package.json."""
    locked = source / PACKAGE_JSON
    if first:
        project.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(locked, project / PACKAGE_JSON)
    else:
        shipped = project / PACKAGE_JSON
        if not shipped.is_file():
            raise BuilderError(f"the app has no {shipped}", hint="lock again")
        if shipped.read_bytes() != locked.read_bytes():
            raise BuilderError(
                f"{shipped} differs from the locked {locked}",
                hint="the app's nested project changed: lock again",
            )
        (project / SHRINKWRAP).unlink(missing_ok=True)
    shutil.copyfile(source / PACKAGE_LOCK, project / PACKAGE_LOCK)


def matching(root: Path, pattern: str) -> list[Path]:
    """Paths under ``root`` matching a glob of '/'-separated parts (``*`` within one part)."""
    current = [root]
    for part in pattern.split("/"):
        nxt: list[Path] = []
        for base in current:
            if not base.is_dir() or base.is_symlink():
                continue
            if any(ch in part for ch in "*?["):
                nxt.extend(child for child in sorted(base.iterdir())
                           if fnmatch.fnmatchcase(child.name, part))
            elif (base / part).exists() or (base / part).is_symlink():
                nxt.append(base / part)
        current = nxt
    return current
