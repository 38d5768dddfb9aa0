"""Running a check plan on the finished tree: the I/O edge of ``builder.check``.

The bundle directory is renamed to a sibling for the duration (whatever still names the staging
path breaks, as it would once installed) and renamed back whatever happens. Each check runs in
``builder.sandbox`` (fresh HOME as its working directory, no host Python/pip settings); after
each one the tree is compared with a snapshot taken before the first: a check that writes into
the bundle fails the build (at run time it is mounted read-only).

1. imports: one ``python -I -B`` child imports every module of the plan and reports failures as
   JSON (one process: seconds, not minutes); offline.
2. commands: each of ``[checks] commands`` must exit 0 within the bound; offline.
3. service: service-def.json's command (Backend.AI's interpolation, a free loopback port, the
   mount point mapped to the checked tree, ``--ip 127.0.0.1`` for the launcher), asked over
   HTTP until an accepted answer (see ``builder.check.service``), then its process group is
   stopped (SIGTERM, SIGKILL after a grace period). It needs loopback, so it is not offline.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from builder.check.model import CheckPlan, CheckReport, CheckResult, CommandCheck, ImportTarget
from builder.check.service import (
    LOOPBACK,
    Waited,
    service_command,
    service_env,
    wait_for_answer,
)
from builder.check.tree import changes, moved, render_changes, undo_bytecode
from builder.errors import BuilderError
from builder.sandbox import (
    SYSTEM_PATH,
    Outcome,
    Sandbox,
    background,
    failure,
    run,
    sandbox,
    stop_group,
)
from builder.treewatch import Snapshot, snapshot

Log = Callable[[str], None]
TRACEBACK_LINES = 6  # of each failed import: the innermost frames and the exception
IMPORTING = "builder-check: importing "
# runs in the bundle's Python (3.8+, standard library only): argv[1] the modules (JSON list),
# argv[2] where to write {module: [last traceback lines]}; progress on stderr names the module
# being imported, so a crash (a segfaulting extension) still says which one
IMPORT_SCRIPT = f"""\
import importlib, json, os, sys, traceback
with open(sys.argv[1], encoding="utf-8") as f:
    modules = json.load(f)
failed = {{}}
for name in modules:
    sys.stderr.write({IMPORTING!r} + name + "\\n")
    sys.stderr.flush()
    try:
        importlib.import_module(name)
    except BaseException as exc:
        lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        failed[name] = lines.rstrip().splitlines()[-{TRACEBACK_LINES}:]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(failed, f)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""
PKG_RESOURCES = "No module named 'pkg_resources'"


def run_checks(plan: CheckPlan, *, bundle_root: Path, source_date_epoch: int,
               scratch: Path | None, log: Log) -> CheckReport:
    """Run every check of ``plan`` on the tree at ``bundle_root`` (``app/`` and the metadata);
    the first failure raises :class:`BuilderError`. The tree is where it was afterwards. The
    checks' HOMEs are made in ``scratch`` (the build's staging directory; None: TMPDIR)."""
    results: list[CheckResult] = []
    for name in plan.unused_skips:
        log(f"note: checks.import_skip: {name} matches no installed module")
    with moved(bundle_root) as root:
        before = snapshot(root)
        app = root / "app"
        if plan.imports:
            results.append(_timed(log, lambda: check_imports(
                plan, app=app, source_date_epoch=source_date_epoch, scratch=scratch)))
            _unchanged(root, before, "the import check", plan, log)
        for command in plan.commands:
            results.append(_timed(log, lambda c=command: check_command(  # type: ignore[misc]
                plan, c, app=app, source_date_epoch=source_date_epoch, scratch=scratch)))
            _unchanged(root, before, f"check command {command.index + 1}", plan, log)
        if plan.service is not None:
            results.append(_timed(log, lambda: check_service(
                plan, app=app, source_date_epoch=source_date_epoch, scratch=scratch)))
            _unchanged(root, before, "the service check", plan, log)
        elif plan.service_note:
            log(f"check service: {plan.service_note}")
    return CheckReport(results=tuple(results))


def _timed(log: Log, check: Callable[[], tuple[str, str]]) -> CheckResult:
    start = time.monotonic()
    name, detail = check()
    seconds = time.monotonic() - start
    log(f"check {name}: {detail} ({seconds:.1f} s)")
    return CheckResult(name=name, seconds=seconds, detail=detail)


def _unchanged(root: Path, before: Snapshot, what: str, plan: CheckPlan,
               log: Log) -> None:
    after = snapshot(root)
    undone = undo_bytecode(root, before, after)
    if undone:
        shown = [p for p in undone if p.endswith(".pyc")]
        log(f"note: {what} wrote Python bytecode into the tree, removed (on the read-only mount "
            f"it is compiled at every start): {', '.join(shown[:3])}"
            f"{f' and {len(shown) - 3} more' if len(shown) > 3 else ''}")
        after = snapshot(root)
    lines = changes(before, after)
    if lines:
        raise BuilderError(
            f"{what} wrote into the bundle (it is mounted read-only at run time):\n"
            f"{render_changes(lines)}",
            where=f"{plan.recipe_path}: checks",
            hint="the app must write only to $HOME, $TMPDIR or directories given by the "
            "environment; fix the command, or the package that writes into its own tree")


# --- imports ---------------------------------------------------------------------------------


def check_imports(plan: CheckPlan, *, app: Path, source_date_epoch: int,
                  scratch: Path | None) -> tuple[str, str]:
    """Every module in one child; a module that failed there is tried again alone, in a fresh
    child, and only a module that fails alone fails the check. (One process for all is what
    keeps this to seconds, but it lets modules meet that never meet in the app: setuptools'
    distutils shim refuses to load after another module imported the standard library's
    distutils, for one.)"""
    with sandbox(path=[app / d for d in plan.path], source_date_epoch=source_date_epoch,
                 parent=scratch) as box:
        failed = _import_in_child(plan, [t.module for t in plan.imports], app=app, box=box,
                                  name="all")
        alone_ok = [m for m in sorted(failed)
                    if not _import_in_child(plan, [m], app=app, box=box, name=m)]
    for module in alone_ok:
        del failed[module]
    if failed:
        raise import_failure(plan, failed)
    dists = {d for t in plan.imports for d in t.distributions}
    skipped = f", {len(plan.skipped)} skipped" if plan.skipped else ""
    together = (f"; {', '.join(alone_ok)} only alone (not after the others)"
                if alone_ok else "")
    return "imports", (f"{_count(len(plan.imports), 'module')} of "
                       f"{_count(len(dists), 'distribution')} import{skipped}{together}")


def _import_in_child(plan: CheckPlan, modules: list[str], *, app: Path, box: Sandbox,
                     name: str) -> dict[str, list[str]]:
    """Import ``modules`` in one ``python -I -B`` child; the failures (module -> traceback)."""
    work = box.home / f"import-check-{name}"
    work.mkdir()
    (work / "check.py").write_text(IMPORT_SCRIPT, encoding="utf-8")
    (work / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    result = work / "failed.json"
    argv = [str(app / plan.python), "-I", "-B", str(work / "check.py"),
            str(work / "modules.json"), str(result)]
    outcome = run(box, argv, cwd=box.home, timeout=plan.timeout)
    failed = _read_failures(result) if outcome.returncode == 0 else None
    if failed is None:
        raise _import_crash(plan, outcome)
    return failed


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _read_failures(path: Path) -> dict[str, list[str]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): [str(line) for line in v] for k, v in data.items()}


def import_failure(plan: CheckPlan, failed: dict[str, list[str]]) -> BuilderError:
    """One error listing each module that did not import, its distributions and traceback."""
    by_module: dict[str, ImportTarget] = {t.module: t for t in plan.imports}
    blocks = []
    for module in sorted(failed):
        owners = ", ".join(by_module[module].distributions) if module in by_module else "?"
        lines = "\n".join(f"    | {line}" for line in failed[module]) or "    | (no traceback)"
        blocks.append(f"  {module} (from {owners}):\n{lines}")
    count = len(failed)
    what = (f"import check: {count} module{'s' if count != 1 else ''} of {len(plan.imports)} "
            f"do{'es' if count == 1 else ''} not import in the bundle's Python "
            f"({plan.python} -I):\n" + "\n".join(blocks))
    skip = ", ".join(f'"{m}"' for m in sorted(failed))
    hint = (f"fix the packages (a missing dependency: add it to packages.requirements), or "
            f"leave the module out on purpose: checks.import_skip = [{skip}]")
    if any(PKG_RESOURCES in line for lines in failed.values() for line in lines):
        hint = ("pkg_resources is gone from setuptools >= 81: add \"setuptools<81\" to "
                f"packages.requirements (and re-lock); or {hint}")
    return BuilderError(what, where=f"{plan.recipe_path}: checks.imports", hint=hint)


def _import_crash(plan: CheckPlan, outcome: Outcome) -> BuilderError:
    """The child ended without its report (a crash, an exit, the time bound)."""
    started = [line[len(IMPORTING):] for line in outcome.output.splitlines()
               if line.startswith(IMPORTING)]
    if not started:
        return failure(outcome, what="import check", where=f"{plan.recipe_path}: checks.imports",
                       hint="raise checks.timeout if the bundle is just slow")
    return failure(outcome, what=f"import check (while importing {started[-1]})",
                   where=f"{plan.recipe_path}: checks.imports",
                   hint=f'leave the module out with checks.import_skip = ["{started[-1]}"] if it '
                   "cannot be imported in a headless build, or raise checks.timeout")


# --- commands --------------------------------------------------------------------------------


def resolve_command(command: CommandCheck, *, app: Path, path: tuple[Path, ...],
                    where: str) -> list[str]:
    """``argv`` with argv[0] made absolute: a path inside the app, or a command on PATH."""
    first, *rest = command.argv
    if "/" in first:
        resolved = app / first
        if not (resolved.is_file() and os.access(resolved, os.X_OK)):
            raise BuilderError(f"check command {command.index + 1}: {first} is not an "
                               "executable file of the app", where=where,
                               hint="a path is relative to the app root (e.g. bin/jupyter)")
        return [str(resolved), *rest]
    dirs = [*(str(p) for p in path), *SYSTEM_PATH]
    found = shutil.which(first, path=os.pathsep.join(dirs))
    if found is None:
        raise BuilderError(f"check command {command.index + 1}: {first} is not on the bundle's "
                           "PATH (app/bin, app/python/bin, then /usr/local/bin, /usr/bin, /bin)",
                           where=where, hint="name a console script the bundle exposes, or a "
                           "path relative to the app root (e.g. python/bin/python3)")
    return [found, *rest]


def check_command(plan: CheckPlan, command: CommandCheck, *, app: Path,
                  source_date_epoch: int, scratch: Path | None) -> tuple[str, str]:
    where = f"{plan.recipe_path}: checks.commands[{command.index}]"
    path = tuple(app / d for d in plan.path)
    argv = resolve_command(command, app=app, path=path, where=where)
    with sandbox(path=path, source_date_epoch=source_date_epoch, parent=scratch) as box:
        outcome = run(box, argv, cwd=box.home, timeout=plan.timeout)
    name = f"command {command.index + 1}"
    if outcome.returncode != 0:
        shown = Outcome(argv=command.argv, returncode=outcome.returncode, output=outcome.output,
                        seconds=outcome.seconds, timed_out=outcome.timed_out)
        raise failure(shown, what=f"check {name}", where=where,
                      hint="a check command must exit 0 in the finished bundle (run offline, "
                      "from a temporary HOME, with app/bin and app/python/bin first on PATH)")
    return name, " ".join(command.argv)


# --- service ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on loopback now (the service binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def http_status(url: str, *, timeout: float) -> int | str:
    """GET ``url`` without any proxy, redirects followed: the status, or why none came."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        request = urllib.request.Request(url, method="GET")  # noqa: S310 (http://127.0.0.1 only)
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except urllib.error.URLError as exc:
        reason = exc.reason
        return str(reason.strerror if isinstance(reason, OSError) and reason.strerror
                   else reason).lower()
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__ if not str(exc) else str(exc).lower()


def check_service(plan: CheckPlan, *, app: Path, source_date_epoch: int,
                  scratch: Path | None) -> tuple[str, str]:
    service = plan.service
    if service is None:
        return "service", "none"
    where = f"{plan.recipe_path}: service"
    port = free_port()
    argv = service_command(service.command, launcher=service.launcher, port=port,
                           final_root=plan.final_root, app=str(app), where=where)
    env = service_env(service.env, port=port, final_root=plan.final_root, app=str(app),
                      where=where)
    url = f"http://{LOOPBACK}:{port}{service.url_path}"
    with sandbox(path=(), source_date_epoch=source_date_epoch, offline=False,
                 parent=scratch) as box, \
            background(box, argv, cwd=box.home, env=env) as running:
        waited = wait_for_answer(url, probe=http_status, poll=running.poll,
                                 clock=time.monotonic, sleep=time.sleep,
                                 bound=float(plan.timeout))
        if waited.status is None:
            stop_group(running.proc)
            raise service_failure(plan, waited, url=url, output=running.outcome())
    return "service", f"{url} answered HTTP {waited.status} after {waited.seconds:.1f} s"


def service_failure(plan: CheckPlan, waited: Waited, *, url: str,
                    output: Outcome) -> BuilderError:
    command = " ".join(plan.service.command) if plan.service else "?"
    where = f"{plan.recipe_path}: service"
    if waited.exit_code is not None:
        status = (f"was killed by signal {-waited.exit_code}" if waited.exit_code < 0
                  else f"exited with code {waited.exit_code}")
        return BuilderError(
            f"service check: the service {status} before answering at {url}: "
            f"{command}\n{output.tail()}", where=where,
            hint=f"start it by hand to see why: {plan.final_root}/bin/launch --port 8888 "
            "(the output above is the service's own)")
    return BuilderError(
        f"service check: no HTTP answer at {url} within {plan.timeout} s (last: {waited.last}): "
        f"{command}\n{output.tail()}", where=where,
        hint="accepted are 2xx, 3xx, 401 and 403; if the app starts slowly raise "
        "checks.timeout, if it serves elsewhere fix service.url_template, or set "
        "checks.service = false")
