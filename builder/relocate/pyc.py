"""Byte-compile the bundle's python sources as unchecked-hash ``.pyc`` files.

The tarball normalises every mtime, so timestamp-based ``.pyc`` files would be stale, and a
read-only mount would recompile them at every start. Unchecked-hash ``.pyc`` files are used as
they are.

The source path a ``.pyc`` embeds (``co_filename``) is the same for every app:
``/opt/apps/_/<path in app>`` (compileall ``-s <staged app root> -p /opt/apps/_``), so the bytes
depend neither on the staging directory nor on the app's name, and the agent's store keeps one
copy of the standard library's and of shared packages' ``.pyc`` files for all apps. What a user
sees is the real path all the same: CPython's source loader, which loads every one of these files
(they sit in ``__pycache__`` beside their source), replaces the embedded path with the source's
real path, in nested code objects too (``_imp._fix_co_filename`` in
``importlib._bootstrap_external._compile_bytecode``, hash-based ``.pyc`` included), before the
module runs: tracebacks, ``inspect``, ``linecache``, ``warnings``, ``python -m``, debuggers and
coverage read the fixed code objects. Only code read from a ``.pyc`` without the import system
(``marshal`` on the file, ``pkgutil.read_code``, ``python path/to/x.cpython-311.pyc``) shows the
placeholder; no app can be called ``_`` (names start with ``[a-z0-9]``), so it never names a real
app's file, and being absolute, ``linecache`` does not go looking for it on ``sys.path``.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from builder.elf import is_elf, read_elf
from builder.errors import BuilderError
from builder.host import HOST_ARCH
from builder.relocate.model import PycResult
from builder.sandbox import die_with_parent

_FAILED = re.compile(r"^\*\*\* Error compiling (.+)\.\.\.$")
CHILD_PATH = "/usr/bin:/bin"
# The app root every .pyc names, whatever the app (see the module docstring).
PYC_ROOT = PurePosixPath("/opt/apps/_")

# ``python -c`` runs compileall so that each of its ``-j`` workers is SIGKILLed by Linux when
# compileall dies (PR_SET_PDEATHSIG, set in every forked child; a child whose parent died
# before that exits); compileall itself gets the same from builder (``die_with_parent``), so a
# build killed with SIGKILL leaves no compiler behind. Without prctl it just runs.
RUN_COMPILEALL = """\
import os, runpy, signal
try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _parent = [0]
    def _before_fork():
        _parent[0] = os.getpid()
    def _die_with_parent():
        _prctl(1, signal.SIGKILL)
        if os.getppid() != _parent[0]:
            os._exit(1)
    os.register_at_fork(before=_before_fork, after_in_child=_die_with_parent)
except (ImportError, OSError, AttributeError):
    pass
runpy.run_module("compileall", run_name="__main__", alter_sys=True)
"""


class PycCompiler(Protocol):
    """Port: compile every ``.py`` below ``dirs`` (absolute paths inside ``app_root``)."""

    def compile(self, *, app_root: Path, dirs: tuple[Path, ...]) -> PycResult: ...


def child_env() -> dict[str, str]:
    """The whole environment of a child Python: nothing leaks in from the caller."""
    return {"PATH": CHILD_PATH, "PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "PYTHONNOUSERSITE": "1"}


def compileall_argv(python: Path, *, app_root: Path, dirs: tuple[Path, ...]) -> tuple[str, ...]:
    # -s/-p: compileall strips the staged app root from each source path and prepends PYC_ROOT,
    # e.g. <staged app>/python/lib/x.py -> /opt/apps/_/python/lib/x.py.
    return (
        str(python),
        "-c",
        RUN_COMPILEALL,
        "-q",
        "-f",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(app_root),
        "-p",
        str(PYC_ROOT),
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

    def compile(self, *, app_root: Path, dirs: tuple[Path, ...]) -> PycResult:
        argv = compileall_argv(self.python, app_root=app_root, dirs=dirs)
        env = dict(self.env) if self.env is not None else child_env()
        returncode, stdout, stderr = _run_group(argv, env, where=app_root)
        failed = parse_failures(stdout, app_root)
        if returncode != 0 and not failed:
            detail = (stderr or stdout).strip()[-2000:]
            raise BuilderError(
                f"compileall failed with exit code {returncode}:\n{detail}",
                where=str(self.python),
            )
        return PycResult(compiled=count_sources(dirs) - len(failed), failed=failed)


def _run_group(argv: tuple[str, ...], env: Mapping[str, str], *,
               where: Path) -> tuple[int, str, str]:
    """Run ``argv`` in a process group of its own; if we are stopped while it runs (SIGTERM,
    Ctrl-C: an exception here), the whole group, its ``-j`` workers too, is killed first."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True,
                                preexec_fn=die_with_parent())  # noqa: PLW1509 - prctl only
    except OSError as exc:
        raise BuilderError(f"cannot run {argv[0]}: {exc}", where=str(where)) from exc
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc.returncode, stdout, stderr


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
