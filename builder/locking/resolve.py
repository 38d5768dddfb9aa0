"""Resolve a recipe's requirements for one target with pip's resolver, never for the host
(pip run as :mod:`builder.tools.pip` describes)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import BuilderError
from builder.lock.model import (
    InterpreterPin,
    LockedPackage,
    TargetLock,
    WheelhouseLock,
    is_sdist_filename,
)
from builder.recipe.model import Recipe
from builder.scratch import STAGE_DIR, claimed_dir
from builder.tools.pip import (
    isolated_pip_env,
    pip_command,
    pip_failure,
    platform_tags,
    target_environment,
    target_options,
)
from builder.tools.run import CommandRunner, run_command


def resolve_target(
    recipe: Recipe,
    pin: InterpreterPin,
    *,
    cache_dir: Path,
    runner: CommandRunner = run_command,
) -> TargetLock:
    """Resolve the recipe's requirements for ``pin.triple`` with pip's resolver, and the
    kernels' wheelhouse for each image Python it names."""
    packages = resolve_requirements(
        recipe.packages.requirements, triple=pin.triple, python_version=pin.python_version,
        glibc_floor=recipe.targets.glibc_floor, index_url=recipe.packages.index_url,
        cache_dir=cache_dir, runner=runner, what=f"resolving for {pin.triple}", where=recipe.path,
        sdists=recipe.packages.allow_sdists,
    )
    wheelhouse = []
    kernels = recipe.kernels
    for minor in kernels.wheelhouse_pythons if kernels is not None else ():
        python_version = f"{minor}.0"
        wheelhouse.append(WheelhouseLock(
            python=minor,
            python_version=python_version,
            packages=resolve_requirements(
                kernels.wheelhouse if kernels is not None else (), triple=pin.triple,
                python_version=python_version, glibc_floor=recipe.targets.glibc_floor,
                index_url=recipe.packages.index_url, cache_dir=cache_dir, runner=runner,
                what=f"resolving the kernels' wheelhouse for {pin.triple}, Python {minor}",
                where=f"{recipe.path}: kernels.wheelhouse",
            ),
        ))
    return TargetLock(
        target=pin.triple,
        platform_tags=platform_tags(pin.triple, recipe.targets.glibc_floor),
        interpreter=pin,
        packages=packages,
        wheelhouse=tuple(wheelhouse),
    )


def resolve_requirements(
    requirements: Sequence[str],
    *,
    triple: str,
    python_version: str,
    glibc_floor: str,
    index_url: str,
    cache_dir: Path,
    runner: CommandRunner,
    what: str,
    where: str,
    sdists: bool | tuple[str, ...] = False,
) -> tuple[LockedPackage, ...]:
    """One pip resolution (``install --dry-run --report``) for a target and Python version;
    ``sdists``: the projects whose source distributions may be chosen (True: any)."""
    # owned scratch under the cache (not TMPDIR): the next lock or build collects it when
    # this process is killed
    with claimed_dir(cache_dir / STAGE_DIR, prefix="builder-lock-") as tmp:
        report = tmp / "report.json"
        argv = [
            *pip_command("install", triple=triple, python_version=python_version,
                         sdists=sdists),
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            f"--report={report}",
            f"--target={Path(tmp) / 'target'}",
            *target_options(
                triple=triple,
                python_version=python_version,
                glibc_floor=glibc_floor,
                index_url=index_url,
            ),
            *requirements,
        ]
        proc = runner(argv, env=isolated_pip_env(cache_dir))
        if proc.returncode != 0:
            if sdists is not True:
                _explain_sdist_only(proc, runner=runner, argv=argv, sdists=sdists,
                                    cache_dir=cache_dir, where=where)
            raise pip_failure(proc, what=what, where=where)
        data = json.loads(report.read_text(encoding="utf-8"))
    return packages_from_report(
        data, environment=target_environment(triple, python_version), where=where
    )


_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)")


def _explain_sdist_only(proc: subprocess.CompletedProcess[str], *, runner: CommandRunner,
                        argv: list[str], sdists: bool | tuple[str, ...], cache_dir: Path,
                        where: str) -> None:
    """When pip found no wheel for a project, ask once more with that project's sdists
    allowed: if that resolves, the version exists only as a source distribution, and the
    user is told exactly that (pip's own message names only the versions it could use)."""
    match = _NO_MATCH.search(proc.stderr or "")
    if match is None:
        return
    name = canonicalize_name(match.group(1))
    allowed = (*(sdists if isinstance(sdists, tuple) else ()), name)
    split = argv.index("--")
    # argv: [python, -m, builder.tools.pip_target, ENV, (SDISTS,) --, ...]
    retry = [*argv[:4], json.dumps(sorted(set(allowed))), *argv[split:]]
    with claimed_dir(cache_dir / STAGE_DIR, prefix="builder-lock-") as tmp:
        retry = [f"--report={tmp / 'report.json'}" if a.startswith("--report=") else a
                 for a in retry]
        again = runner(retry, env=isolated_pip_env(cache_dir))
        if again.returncode != 0:
            return
        data = json.loads((tmp / "report.json").read_text(encoding="utf-8"))
    for item in data.get("install", []):
        if canonicalize_name(item["metadata"]["name"]) != name:
            continue
        filename = str((item.get("download_info") or {}).get("url", "")).rsplit("/", 1)[-1]
        version = item["metadata"]["version"]
        raise BuilderError(
            f"{name} {version} is published only as a source distribution ({filename}) for "
            "this target, and the recipe does not allow sdists",
            where=where,
            hint=f'allow it in the recipe: packages.allow_sdists = ["{name}"] (builder then '
            "builds its wheel offline from locked build dependencies), or pin a version "
            "that has a wheel",
        )


def packages_from_report(
    report: Mapping[str, Any], *, environment: Mapping[str, str], where: str
) -> tuple[LockedPackage, ...]:
    """Turn pip's installation report into sorted locked packages with ``via`` edges."""
    items: dict[str, Mapping[str, Any]] = {}
    for item in report.get("install", []):
        items[canonicalize_name(item["metadata"]["name"])] = item
    dependants: dict[str, set[str]] = {name: set() for name in items}
    for name, item in items.items():
        if item.get("requested"):
            dependants[name].add("-r recipe")
        extras = [""] + [str(e) for e in item.get("requested_extras") or []]
        for text in item["metadata"].get("requires_dist") or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            dep: str = canonicalize_name(req.name)
            if dep not in dependants:
                continue
            if req.marker is None or any(
                req.marker.evaluate({**environment, "extra": extra}) for extra in extras
            ):
                dependants[dep].add(name)
    packages = []
    for name, item in sorted(items.items()):
        info = item.get("download_info") or {}
        hashes = (info.get("archive_info") or {}).get("hashes") or {}
        sha256 = hashes.get("sha256")
        url = str(info.get("url", ""))
        if not sha256:
            raise BuilderError(
                f"the index gave no sha256 for {name} ({url})",
                where=where,
                hint="use an index that publishes hashes (PyPI does)",
            )
        filename = url.rsplit("/", 1)[-1].split("#", 1)[0]
        packages.append(
            LockedPackage(
                name=name,
                version=str(item["metadata"]["version"]),
                filename=filename,
                sha256=str(sha256),
                via=tuple(sorted(dependants[name])),
                url=url.split("#", 1)[0] if is_sdist_filename(filename) else None,
            )
        )
    return tuple(packages)
