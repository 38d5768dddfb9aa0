"""Run the recipe's ``[build]`` steps in the staged app, twice, and prove they are reproducible.

Decisions (see also builder/sandbox.py, which builds the environment):
- Each step is an argv list (no shell) run in the app root (cwd), with the bundle's
  ``python/bin`` first on PATH, then only ``/usr/local/bin:/usr/bin:/bin``. ``argv[0]`` is a
  command found there, or a path relative to the app root when it contains a ``/``.
- The steps of one run share one private HOME/TMPDIR (removed afterwards), run with
  SOURCE_DATE_EPOCH, umask 022, no host Python/pip configuration, and without network where a
  network namespace can be made (the report says whether it could).
- Each step is bounded in time (``timeout`` seconds, each run); the sandbox kills its process
  group when the bound passes.
- Reproducibility: before the first step, the whole app is copied to another path (``cp -a``,
  copy-on-write where possible). Every step runs in the app and then in the copy, and what it
  added, changed or removed in either tree is compared (bytes with the copy's root replaced by
  the app's, modes, symlink targets). Any difference fails the build at that step, naming the
  files and how they differ. Comparing step by step names the step at fault and the output
  it printed. The copy also shows a step that fails only somewhere else.
- What the steps write is relocated and scanned with the rest of the app afterwards; the report
  maps each file to the step that wrote it, so a leftover staging path names its step.
- Not prevented: a step running as root can write outside the app (``/etc``, ``~root``); only
  a container (a mount namespace with a read-only root) would stop that. The steps' own HOME
  and TMPDIR are private and removed, and nothing outside the app goes into the bundle.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from builder.errors import BuilderError
from builder.fsutil import rmtree
from builder.sandbox import SYSTEM_PATH, Outcome, Sandbox, failure, network_isolation, run, sandbox
from builder.steps.compare import Difference, compare_runs
from builder.steps.model import StepResult, StepsReport, step_label
from builder.steps.tree import copy_tree, point_scripts_at
from builder.treewatch import Snapshot, diff, snapshot

DEFAULT_TIMEOUT = 600.0  # seconds, for each run of each step
MAX_LISTED = 10
FAILED_HINT = ("the step runs in the app root with the bundle's python/bin first on PATH, a "
               "private HOME, no network and no host pip configuration; reproduce it there")
NOT_REPRODUCIBLE_HINT = ("a step must write the same bytes every time and wherever the app is: "
                         "take times from SOURCE_DATE_EPOCH, not the clock; sort what it writes "
                         "(directory listings, sets, dict keys); no random names or temporary "
                         "paths")


def run_build_steps(
    steps: Sequence[tuple[str, ...]],
    *,
    app: Path,
    python_bin: Path,
    source_date_epoch: int,
    where: str,
    log: Callable[[str], None],
    timeout: float = DEFAULT_TIMEOUT,
    scratch: Path | None = None,
    offline: bool = True,
) -> StepsReport:
    """Run ``steps`` (build.steps of the recipe at ``where``) in ``app``, each twice.

    ``python_bin`` (inside ``app``) goes first on PATH; ``scratch`` holds the second tree
    (default: TMPDIR; the staging directory keeps it on the app's filesystem). Raises
    BuilderError when a step is missing, fails, outlasts ``timeout`` or is not reproducible.
    """
    if not steps:
        return StepsReport(steps=(), offline=False, copy_seconds=0.0)
    isolated = offline and network_isolation() is not None
    if offline and not isolated:
        log("warning: no network namespace can be made here (unshare); build steps run with "
            "the network")
    twin_parent = Path(tempfile.mkdtemp(prefix="builder-steps-", dir=scratch))
    try:
        start = time.monotonic()
        twin = twin_parent / "app"
        copy_tree(app, twin)
        point_scripts_at(twin, bin_dir=twin / python_bin.relative_to(app), old=app)
        copy_seconds = time.monotonic() - start
        log(f"build steps: copied the app for their second run in {copy_seconds:.1f} s")
        twin_bin = twin / python_bin.relative_to(app)
        # the HOMEs beside the twin: in the staging directory, collected after a SIGKILL
        with sandbox(path=(python_bin,), source_date_epoch=source_date_epoch,
                     offline=isolated, parent=twin_parent) as first, \
                sandbox(path=(twin_bin,), source_date_epoch=source_date_epoch,
                        offline=isolated, parent=twin_parent) as second:
            results = []
            trees = (snapshot(app), snapshot(twin))
            for index, argv in enumerate(steps, start=1):
                # checked when its turn comes: an earlier step may have made it
                _check_program(index, argv, app=app, search=(python_bin, *SYSTEM_PATH),
                               where=where)
                result, trees = _run_step(index, tuple(argv), trees=trees,
                                          boxes=(first, second), timeout=timeout, where=where)
                log(f"{result.label}: {result.seconds:.1f} s, {_files(len(result.written))} "
                    f"(second run {result.check_seconds:.1f} s)")
                results.append(result)
    finally:
        rmtree(twin_parent)
    return StepsReport(steps=tuple(results), offline=isolated, copy_seconds=copy_seconds)


def _at(where: str, index: int) -> str:
    return f"{where}: build.steps[{index - 1}]"


def _check_program(index: int, argv: Sequence[str], *, app: Path,
                   search: Sequence[Path | str], where: str) -> None:
    program = argv[0]
    if "/" in program:
        found = (app / program).is_file() and os.access(app / program, os.X_OK)
        place = "an executable file at that path inside the app"
    else:
        found = shutil.which(program, path=os.pathsep.join(map(str, search))) is not None
        place = "a command on the bundle's PATH (python/bin, " + ", ".join(SYSTEM_PATH) + ")"
    if not found:
        raise BuilderError(
            f"{step_label(index, tuple(argv))}: {program!r} is not {place}",
            where=_at(where, index),
            hint="name a console script of an installed package (e.g. jupyter), python3, a "
            "system tool, or a path relative to the app root such as python/bin/python3",
        )


def _run_step(index: int, argv: tuple[str, ...], *, trees: tuple[Snapshot, Snapshot],
              boxes: tuple[Sandbox, Sandbox], timeout: float,
              where: str) -> tuple[StepResult, tuple[Snapshot, Snapshot]]:
    """One step in the app, then in the copy; the snapshots of both trees after it."""
    label = step_label(index, argv)
    app, twin = trees[0].root, trees[1].root
    # failure() appends the whole command: the message names the step by its number
    first = _run_once(boxes[0], argv, cwd=app, timeout=timeout, what=f"build step {index}",
                      hint=FAILED_HINT, where=_at(where, index))
    app_after = snapshot(app)
    second = _run_once(boxes[1], argv, cwd=twin, timeout=timeout,
                       what=f"build step {index}, run again in a copy of the app at another "
                       "path, passed the first time but", hint=NOT_REPRODUCIBLE_HINT,
                       where=_at(where, index))
    twin_after = snapshot(twin)
    app_again = snapshot(app)
    escaped = diff(app_after, app_again)
    if escaped:  # e.g. a script whose shebang or config names the app's own path
        raise BuilderError(
            f"{label}, run again in a copy of the app at another path, changed the app itself: "
            + ", ".join(c.path for c in escaped[:MAX_LISTED])
            + (" ..." if len(escaped) > MAX_LISTED else ""),
            where=_at(where, index),
            hint="a step must work on the tree it runs in (its working directory, the python "
            "on PATH), not on a path written into a file before it ran",
        )
    changes = diff(trees[0], app_after)
    touched = {c.path for c in (*changes, *diff(trees[1], twin_after))}
    differences = compare_runs(touched, app, twin)
    if differences:
        raise _not_reproducible(label, differences, first, where=_at(where, index))
    result = StepResult(index=index, argv=argv, seconds=first.seconds,
                        check_seconds=second.seconds, changes=changes)
    return result, (app_again, twin_after)


def _run_once(box: Sandbox, argv: tuple[str, ...], *, cwd: Path, timeout: float, what: str,
              hint: str, where: str) -> Outcome:
    outcome = run(box, argv, cwd=cwd, timeout=timeout)
    if outcome.returncode != 0:
        raise failure(outcome, what=what, where=where, hint=hint)
    return outcome


def _not_reproducible(label: str, differences: tuple[Difference, ...], outcome: Outcome, *,
                      where: str) -> BuilderError:
    count = len(differences)
    listed = "\n".join(f"  {d.path}: {d.detail}" for d in differences[:MAX_LISTED])
    more = f"\n  ... and {count - MAX_LISTED} more" if count > MAX_LISTED else ""
    files = f"{count} file{'s' if count != 1 else ''}"
    return BuilderError(
        f"{label} is not reproducible: run again in a copy of the app at another path, it "
        f"left {files} different:\n{listed}{more}\n  its output (first run):\n{outcome.tail()}",
        where=where, hint=NOT_REPRODUCIBLE_HINT)


def _files(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''} written"
