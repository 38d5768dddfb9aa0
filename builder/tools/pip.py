"""pip run for a target, never for the host: the options, marker environment and isolated
environment every pip call builder makes shares (locking resolves with them, fetching downloads
with them).

pip runs in a child process (``builder.tools.pip_target``) with:
- ``--platform`` tags for the target arch no newer than the recipe's glibc floor,
- ``--python-version/--implementation/--abi`` of the target interpreter,
- marker environment of the target (arch, Python version),
- every host pip setting cut off: ``--isolated``, ``PIP_CONFIG_FILE=/dev/null``, no ``PIP_*``
  variables, our own cache directory, an explicit index URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from builder.errors import BuilderError
from builder.host import arch_of
from builder.tools.run import output_tail

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


def pip_command(command: str, *, triple: str, python_version: str,
                sdists: bool | tuple[str, ...] = False) -> list[str]:
    """``python -m builder.tools.pip_target ENV [SDISTS] -- --isolated COMMAND``: pip as on the
    target (``sdists``: projects whose source distributions pip may choose)."""
    env_json = json.dumps(target_environment(triple, python_version), sort_keys=True)
    allow = [json.dumps(sdists if isinstance(sdists, bool) else list(sdists))] if sdists else []
    return [sys.executable, "-m", "builder.tools.pip_target", env_json, *allow, "--",
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
    tail = output_tail(proc.stderr or "", lines=15)
    return BuilderError(f"{what} failed (pip exit code {proc.returncode}):\n{tail}", where=where,
                        hint="check the requirement names and versions, and that the index "
                        "is reachable")
