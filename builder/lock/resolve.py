"""Resolve a recipe's requirements for one target with pip's resolver, never for the host.

pip runs in a child process (``builder.lock.pip_target``) with:
- ``--platform`` tags for the target arch no newer than the recipe's glibc floor,
- ``--python-version/--implementation/--abi`` of the target interpreter,
- marker environment of the target (arch, Python version),
- every host pip setting cut off: ``--isolated``, ``PIP_CONFIG_FILE=/dev/null``, no ``PIP_*``
  variables, our own cache directory, an explicit index URL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import BuilderError
from builder.host import arch_of
from builder.lock.model import (
    InterpreterPin,
    LockedPackage,
    TargetLock,
    WheelhouseLock,
    is_sdist_filename,
)
from builder.recipe.model import Recipe

# the legacy manylinux aliases, by the glibc minor they stand for
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
# the oldest manylinux glibc per arch (aarch64 wheels start at manylinux2014)
_OLDEST = {"x86_64": 5, "aarch64": 17}


def platform_tags(triple: str, glibc_floor: str) -> tuple[str, ...]:
    """pip ``--platform`` values, newest first, never newer than the glibc floor."""
    arch = arch_of(triple)
    floor_minor = int(glibc_floor.split(".")[1])
    tags: list[str] = []
    for minor in range(floor_minor, _OLDEST.get(arch, 17) - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY:
            tags.append(f"{_LEGACY[minor]}_{arch}")
    return tuple(tags)


def target_environment(triple: str, python_version: str) -> dict[str, str]:
    """PEP 508 marker values of the target; nothing taken from the build host."""
    return {
        "implementation_name": "cpython",
        "implementation_version": python_version,
        "os_name": "posix",
        "platform_machine": arch_of(triple),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": python_version,
        "python_version": ".".join(python_version.split(".")[:2]),
        "sys_platform": "linux",
    }


def isolated_pip_env(cache_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for pip that ignores every host pip setting."""
    source = os.environ if base is None else base
    env = {
        key: value
        for key, value in source.items()
        if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "UV_"))
    }
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_CACHE_DIR": str(cache_dir / "pip"),
            "PYTHONHASHSEED": "0",
            "PYTHONNOUSERSITE": "1",
        }
    )
    return env


class CommandRunner(Protocol):
    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]: ...


def run_command(
    argv: Sequence[str], *, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)


def pip_command(command: str, *, triple: str, python_version: str,
                sdists: bool | tuple[str, ...] = False) -> list[str]:
    """``python -m builder.lock.pip_target ENV [SDISTS] -- --isolated COMMAND``: pip as on the
    target (``sdists``: projects whose source distributions pip may choose)."""
    env_json = json.dumps(target_environment(triple, python_version), sort_keys=True)
    allow = [json.dumps(sdists if isinstance(sdists, bool) else list(sdists))] if sdists else []
    return [sys.executable, "-m", "builder.lock.pip_target", env_json, *allow, "--",
            "--isolated", command]


def target_options(
    *, triple: str, python_version: str, glibc_floor: str, index_url: str
) -> list[str]:
    """Options that make pip choose files for the target interpreter and platform."""
    minor = "".join(python_version.split(".")[:2])
    return [
        *(f"--platform={tag}" for tag in platform_tags(triple, glibc_floor)),
        f"--python-version={python_version}",
        "--implementation=cp",
        f"--abi=cp{minor}",
        "--abi=abi3",
        "--abi=none",
        "--only-binary=:all:",
        f"--index-url={index_url}",
    ]


def pip_failure(proc: subprocess.CompletedProcess[str], *, what: str, where: str) -> BuilderError:
    lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
    tail = "\n".join(f"  | {line}" for line in lines[-15:])
    return BuilderError(f"{what} failed (pip exit code {proc.returncode}):\n{tail}", where=where,
                        hint="check the requirement names and versions, and that the index "
                        "is reachable")


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
    with tempfile.TemporaryDirectory(prefix="builder-lock-") as tmp:
        report = Path(tmp) / "report.json"
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
    # argv: [python, -m, builder.lock.pip_target, ENV, (SDISTS,) --, ...]
    retry = [*argv[:4], json.dumps(sorted(set(allowed))), *argv[split:]]
    with tempfile.TemporaryDirectory(prefix="builder-lock-") as tmp:
        retry = [f"--report={Path(tmp) / 'report.json'}" if a.startswith("--report=") else a
                 for a in retry]
        again = runner(retry, env=isolated_pip_env(cache_dir))
        if again.returncode != 0:
            return
        data = json.loads((Path(tmp) / "report.json").read_text(encoding="utf-8"))
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
