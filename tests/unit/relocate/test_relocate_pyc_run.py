"""The compiler ports of ``builder.relocate.pyc`` run: fake interpreters (sh scripts) for the
outcomes, the real offline CPython once for the bytes it writes."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest
from procs import alive, gone
from relocate_factories import make_app, real_python311, write

import builder
from builder.errors import BuilderError
from builder.host import HOST_ARCH
from builder.relocate import pyc
from builder.relocate.pyc import (
    CompileallCompiler,
    child_env,
    compileall_argv,
    python_minor,
    select_pyc_compiler,
)

INTERP = PurePosixPath("python/bin/python3.11")


REAL = real_python311()
needs_real = pytest.mark.skipif(REAL is None, reason="needs `pyenv prefix 3.11.7`")


def fake_python(path: Path, script: str) -> Path:
    """An sh "interpreter": records its argv and environment beside itself, then ``script``."""
    return write(path, (
        "#!/bin/sh\n"
        f'printf "%s\\0" "$@" > "{path}.argv"\n'
        f'env > "{path}.env"\n' + script).encode(), 0o755)


def _tree(tmp_path: Path) -> tuple[Path, tuple[Path, ...]]:
    app = tmp_path / "app"
    lib = app / "python/lib/python3.11"
    write(lib / "a.py", b"x = 1\n")
    write(lib / "pkg/b.py", b"y = 2\n")
    write(lib / "pkg/bad.py", b"def (\n")
    return app, (lib,)


def test_compile_counts_sources_less_failures(tmp_path: Path) -> None:
    app, dirs = _tree(tmp_path)
    bad = app / "python/lib/python3.11/pkg/bad.py"
    python = fake_python(tmp_path / "py", f"echo \"*** Error compiling '{bad}'...\"\nexit 1\n")
    result = CompileallCompiler(python=python).compile(app_root=app, dirs=dirs)
    assert result.compiled == 2
    assert result.failed == ("python/lib/python3.11/pkg/bad.py",)
    argv = Path(f"{python}.argv").read_text().split("\0")[:-1]
    assert argv == list(compileall_argv(python, app_root=app, dirs=dirs)[1:])
    env = dict(line.split("=", 1) for line in Path(f"{python}.env").read_text().splitlines())
    env.pop("PWD", None)  # sh sets these itself
    env.pop("SHLVL", None)
    env.pop("_", None)
    assert env == child_env()


def test_compile_passes_an_explicit_environment(tmp_path: Path) -> None:
    app, dirs = _tree(tmp_path)
    python = fake_python(tmp_path / "py", "exit 0\n")
    result = CompileallCompiler(python=python, env={"PATH": "/bin", "MARK": "1"}).compile(
        app_root=app, dirs=dirs)
    assert (result.compiled, result.failed) == (3, ())
    env = Path(f"{python}.env").read_text().splitlines()
    assert "MARK=1" in env and "PATH=/bin" in env and "PYTHONHASHSEED=0" not in env


def test_compile_failure_without_a_named_file_is_an_error(tmp_path: Path) -> None:
    app, dirs = _tree(tmp_path)
    python = fake_python(tmp_path / "py", "echo out\necho '  ' >&2\n"
                         "printf 'x%.0s' $(seq 2100) >&2\necho ' tail  ' >&2\nexit 3\n")
    with pytest.raises(BuilderError) as info:
        CompileallCompiler(python=python).compile(app_root=app, dirs=dirs)
    detail = "x" * 1995 + " tail"  # stderr, stripped, its last 2000 characters
    assert info.value.what == f"compileall failed with exit code 3:\n{detail}"
    assert info.value.where == str(python)


def test_compile_failure_reports_stdout_when_stderr_is_empty(tmp_path: Path) -> None:
    app, dirs = _tree(tmp_path)
    python = fake_python(tmp_path / "py", "echo ' boom '\nexit 2\n")
    with pytest.raises(BuilderError) as info:
        CompileallCompiler(python=python).compile(app_root=app, dirs=dirs)
    assert info.value.what == "compileall failed with exit code 2:\nboom"


def test_an_interpreter_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    app, dirs = _tree(tmp_path)
    python = tmp_path / "missing-python"
    with pytest.raises(BuilderError) as info:
        CompileallCompiler(python=python).compile(app_root=app, dirs=dirs)
    assert info.value.what.startswith(f"cannot run {python}: ")
    assert "No such file" in info.value.what
    assert info.value.where == str(app)


def test_an_interrupted_compile_kills_the_whole_group(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app, dirs = _tree(tmp_path)
    # the "compiler" starts a worker in its group, then both wait
    python = fake_python(tmp_path / "py", f'sleep 10 &\necho $! > "{tmp_path}/worker"\n'
                         f'touch "{tmp_path}/ready"\nwait\n')
    started: list[subprocess.Popen[str]] = []

    def interrupted(self: subprocess.Popen[str], *_args: object) -> tuple[str, str]:
        started.append(self)
        for _ in range(1000):
            if (tmp_path / "ready").exists():
                break
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        CompileallCompiler(python=python).compile(app_root=app, dirs=dirs)
    (proc,) = started
    for pipe in (proc.stdout, proc.stderr):
        assert pipe is not None
        pipe.close()
    assert proc.returncode == -9  # killed and reaped before the exception went on
    worker = int((tmp_path / "worker").read_text())
    # the worker, reparented, is killed too (its zombie reaped by init)
    assert gone(worker), "the worker outlived the interrupted compile"


def test_python_minor_runs_it_isolated(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "py", "echo ' 3.12 '\n")
    assert python_minor(python) == "3.12"
    argv = Path(f"{python}.argv").read_text().split("\0")[:-1]
    assert argv == ["-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    assert "PYTHONHASHSEED=0" in Path(f"{python}.env").read_text().splitlines()


def test_python_minor_of_one_that_fails_or_is_missing(tmp_path: Path) -> None:
    assert python_minor(fake_python(tmp_path / "py", "echo 3.11\nexit 1\n")) is None
    assert python_minor(tmp_path / "nope") is None


def test_python_minor_gives_up_after_its_timeout(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    real_run = subprocess.run

    def short(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("timeout"))
        kwargs["timeout"] = 0.2
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(pyc.subprocess, "run", short)
    assert python_minor(fake_python(tmp_path / "py", "exec sleep 5\n")) is None
    assert seen == [60]


@needs_real
def test_the_bundle_interpreter_is_chosen_when_it_runs_here(tmp_path: Path) -> None:
    assert REAL is not None
    app = make_app(tmp_path, interpreter=REAL)
    chosen = select_pyc_compiler(app, INTERP, minor="3.11", host_python=tmp_path / "unused")
    assert chosen == CompileallCompiler(python=app / INTERP)


@needs_real
def test_the_host_python_is_chosen_for_another_minor_or_arch(tmp_path: Path) -> None:
    assert REAL is not None
    app = make_app(tmp_path, interpreter=REAL)
    host = fake_python(tmp_path / "host", "echo 3.12\n")
    assert select_pyc_compiler(app, INTERP, minor="3.12", host_python=host) == (
        CompileallCompiler(python=host))
    other = "aarch64" if HOST_ARCH != "aarch64" else "x86_64"
    assert select_pyc_compiler(app, INTERP, minor="3.11", host_python=REAL, arch=other) == (
        CompileallCompiler(python=REAL))
    with pytest.raises(BuilderError) as info:
        select_pyc_compiler(app, INTERP, minor="3.11", arch=other)
    assert info.value.what == (
        f"cannot compile .pyc files: the bundle's interpreter ({HOST_ARCH}) does not run on "
        f"this {other} host and no host Python 3.11 was given")
    assert info.value.where == str(app / INTERP)


@needs_real
def test_a_host_python_of_the_wrong_minor_is_refused(tmp_path: Path) -> None:
    assert REAL is not None
    app = make_app(tmp_path)
    with pytest.raises(BuilderError) as info:
        select_pyc_compiler(app, INTERP, minor="3.12", host_python=REAL)
    assert info.value.what == (
        f"host Python {REAL} is version 3.11, the bundle needs 3.12 to compile .pyc files")
    assert info.value.hint == "pass a host Python 3.12 (e.g. from `pyenv prefix 3.12`)"


def test_a_missing_or_non_elf_bundle_interpreter_falls_back_to_the_host(tmp_path: Path) -> None:
    host = fake_python(tmp_path / "host", "echo 3.11\n")
    app = tmp_path / "empty"
    app.mkdir()
    assert select_pyc_compiler(app, INTERP, minor="3.11", host_python=host) == (
        CompileallCompiler(python=host))
    # a script that would answer 3.11 is no ELF: not the bundle's interpreter
    fake_python(app / INTERP, "echo 3.11\n")
    assert select_pyc_compiler(app, INTERP, minor="3.11", host_python=host) == (
        CompileallCompiler(python=host))


@needs_real
def test_real_compileall_writes_unchecked_hash_pycs_naming_the_shared_root(
        tmp_path: Path) -> None:
    assert REAL is not None
    app, dirs = _tree(tmp_path)
    result = CompileallCompiler(python=REAL).compile(app_root=app, dirs=dirs)
    assert result.compiled == 2
    assert result.failed == ("python/lib/python3.11/pkg/bad.py",)
    data = (app / "python/lib/python3.11/pkg/__pycache__/b.cpython-311.pyc").read_bytes()
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked
    code = marshal.loads(data[16:])
    assert code.co_filename == "/opt/apps/_/python/lib/python3.11/pkg/b.py"


def test_an_unquoted_failure_line_is_read_as_it_is() -> None:
    # compileall quotes the path (repr); a line without quotes is still understood
    app = Path("/tmp/stage 1/app")
    output = "*** Error compiling /tmp/stage 1/app/python/x.py...\n"
    assert pyc.parse_failures(output, app) == ("python/x.py",)


def test_sources_inside_pycache_are_not_counted(tmp_path: Path) -> None:
    # compileall skips __pycache__ directories (a stray .py there is never compiled)
    write(tmp_path / "a.py", b"")
    write(tmp_path / "__pycache__/stray.py", b"")
    write(tmp_path / "sub/__pycache__/stray.py", b"")
    write(tmp_path / "sub/__PYCACHE__/kept.py", b"")
    assert pyc.count_sources((tmp_path,)) == 2


@pytest.mark.parametrize("root", ["/tmp/stage ", "/tmp/stageX"])
def test_failures_below_an_odd_app_root_are_made_relative(root: str) -> None:
    output = f"*** Error compiling '{root}/python/x.py'...\n"
    assert pyc.parse_failures(output, Path(root)) == ("python/x.py",)


def test_the_compiler_dies_with_builder(tmp_path: Path) -> None:
    """builder SIGKILLed mid-compile (no cleanup of ours runs): Linux kills the compiler."""
    app, dirs = _tree(tmp_path)
    pidfile = tmp_path / "pid"
    python = fake_python(tmp_path / "py", f'echo $$ > "{pidfile}.tmp"\nmv "{pidfile}.tmp" '
                         f'"{pidfile}"\nexec sleep 60\n')
    code = ("import sys; from pathlib import Path; from builder.relocate.pyc import "
            "CompileallCompiler; CompileallCompiler(python=Path(sys.argv[1])).compile("
            "app_root=Path(sys.argv[2]), dirs=(Path(sys.argv[3]),))")
    # the builder package this test imports (mutmut's mutated copy too)
    env = {**os.environ, "PYTHONPATH": str(Path(builder.__file__).parents[1])}
    parent = subprocess.Popen([sys.executable, "-c", code, str(python), str(app), str(dirs[0])],
                              env=env)
    pid = 0
    try:
        for _ in range(1000):
            if pidfile.exists():
                pid = int(pidfile.read_text())
                break
            time.sleep(0.01)
        assert pid, "the compiler did not start"
        parent.kill()
        parent.wait()
        assert gone(pid), "the compiler outlived builder"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_an_interrupt_after_the_compiler_ended_is_passed_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C just as the compiler ends: its group is gone, the interrupt still goes on."""
    app, dirs = _tree(tmp_path)
    python = fake_python(tmp_path / "py", "exit 0\n")

    def interrupted(self: subprocess.Popen[str], *_args: object) -> tuple[str, str]:
        self.wait(timeout=30)  # ended and reaped: killpg finds no such group
        for pipe in (self.stdout, self.stderr):
            assert pipe is not None
            pipe.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        CompileallCompiler(python=python).compile(app_root=app, dirs=dirs)
