"""Byte-compile the bundle's python sources as unchecked-hash ``.pyc`` files.

The tarball normalises every mtime, so timestamp-based ``.pyc`` files would be stale, and a
read-only mount would recompile them at every start. Unchecked-hash ``.pyc`` files are used as
they are. The embedded source path is the final location (compileall ``-s <staged app root>
-p <final root>``), so the bytes do not depend on the staging directory.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from builder.elf import is_elf, read_elf
from builder.errors import BuilderError
from builder.host import HOST_ARCH
from builder.relocate.model import PycResult

_FAILED = re.compile(r"^\*\*\* Error compiling (.+)\.\.\.$")
CHILD_PATH = "/usr/bin:/bin"


class PycCompiler(Protocol):
    """Port: compile every ``.py`` below ``dirs`` (absolute paths inside ``app_root``)."""

    def compile(
        self, *, app_root: Path, final_root: PurePosixPath, dirs: tuple[Path, ...]
    ) -> PycResult: ...


def child_env() -> dict[str, str]:
    """The whole environment of a child Python: nothing leaks in from the caller."""
    return {"PATH": CHILD_PATH, "PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "PYTHONNOUSERSITE": "1"}


def compileall_argv(
    python: Path, *, app_root: Path, final_root: PurePosixPath, dirs: tuple[Path, ...]
) -> tuple[str, ...]:
    # -s/-p: compileall strips the staged app root from each source path and prepends the final
    # root, e.g. <staged app>/python/lib/x.py -> /opt/apps/<name>/python/lib/x.py.
    return (
        str(python),
        "-m",
        "compileall",
        "-q",
        "-f",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(app_root),
        "-p",
        str(final_root),
        *(str(d) for d in dirs),
    )


def parse_failures(output: str, app_root: Path) -> tuple[str, ...]:
    """App-relative paths from compileall's ``*** Error compiling '<path>'...`` lines."""
    failed: set[str] = set()
    for line in output.splitlines():
        match = _FAILED.match(line.strip())
        if not match:
            continue
        try:
            path = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            path = match.group(1)
        text = str(path)
        prefix = str(app_root).rstrip("/") + "/"
        failed.add(text[len(prefix) :] if text.startswith(prefix) else text)
    return tuple(sorted(failed))


def count_sources(dirs: tuple[Path, ...]) -> int:
    """``.py`` files compileall visits: it does not descend into symlinked directories."""
    count = 0
    for top in dirs:
        for _dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            count += sum(1 for f in filenames if f.endswith(".py"))
    return count


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileallCompiler:
    """Runs ``python -m compileall`` with an explicit, minimal environment."""

    python: Path
    env: Mapping[str, str] | None = None  # None: ``child_env()``

    def compile(
        self, *, app_root: Path, final_root: PurePosixPath, dirs: tuple[Path, ...]
    ) -> PycResult:
        argv = compileall_argv(self.python, app_root=app_root, final_root=final_root, dirs=dirs)
        env = dict(self.env) if self.env is not None else child_env()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        except OSError as exc:
            raise BuilderError(f"cannot run {self.python}: {exc}", where=str(app_root)) from exc
        failed = parse_failures(proc.stdout, app_root)
        if proc.returncode != 0 and not failed:
            detail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise BuilderError(
                f"compileall failed with exit code {proc.returncode}:\n{detail}",
                where=str(self.python),
            )
        return PycResult(compiled=count_sources(dirs) - len(failed), failed=failed)


def python_minor(python: Path) -> str | None:
    """The ``X.Y`` version of an interpreter, by running it; None if it does not run."""
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", code],
            capture_output=True,
            text=True,
            env=child_env(),
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def select_pyc_compiler(
    app_root: Path,
    interpreter: PurePosixPath,
    *,
    minor: str,
    host_python: Path | None = None,
    arch: str | None = None,
) -> CompileallCompiler:
    """The bundle's own interpreter when it runs on this host, else ``host_python`` (same minor).

    ``interpreter`` is app-relative (``python/bin/python3.11``); ``arch`` defaults to the host's.
    """
    bundle_python = app_root / interpreter
    host = arch or HOST_ARCH
    bundle_arch = None
    if bundle_python.exists() and is_elf(bundle_python.resolve()):
        try:
            bundle_arch = read_elf(bundle_python.resolve()).arch
        except BuilderError:
            bundle_arch = None
    if bundle_arch == host and python_minor(bundle_python) == minor:
        return CompileallCompiler(python=bundle_python)
    if host_python is not None:
        found = python_minor(host_python)
        if found == minor:
            return CompileallCompiler(python=host_python)
        raise BuilderError(
            f"host Python {host_python} is version {found or 'unknown (it does not run)'}, "
            f"the bundle needs {minor} to compile .pyc files",
            hint=f"pass a host Python {minor} (e.g. from `pyenv prefix {minor}`)",
        )
    raise BuilderError(
        f"cannot compile .pyc files: the bundle's interpreter ({bundle_arch or 'missing'}) "
        f"does not run on this {host} host and no host Python {minor} was given",
        where=str(bundle_python),
        hint=f"pass a host Python {minor} to compile with",
    )
