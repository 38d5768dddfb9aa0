"""Relocation end to end: a real interpreter, real cc-built ELF files, real patchelf, compileall."""

from __future__ import annotations

import marshal
import os
import py_compile
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from relocate_factories import SITE, console_script, dist_info, make_app, write
from servers import pyenv_prefix

from builder.elf import Patchelf, read_elf
from builder.errors import BuilderError
from builder.relocate import RelocationReport, relocate
from builder.relocate.pyc import PYC_ROOT

pytestmark = pytest.mark.integration

_PREFIX = pyenv_prefix("3.11.7")  # found through pyenv, not this machine's layout
PYTHON = (_PREFIX or Path("/nonexistent")) / "bin" / "python3.11"
FINAL = PurePosixPath("/opt/apps/hello")
ENV = {"PATH": "/usr/bin:/bin"}

MODULE = b"""\
import ctypes
import pathlib
import sys

def main():
    site = pathlib.Path(__file__).resolve().parent
    ext = ctypes.CDLL(str(site / "pkg" / "_ext.so"))
    print(f"hello from {__name__} {ext.answer()} argv0={pathlib.Path(sys.argv[0]).name}")

def fail():
    def inner():
        raise LookupError("raised inside hello_mod")
    return inner()
"""

# Self-contained: with a symlinked interpreter, the staged site-packages is not on sys.path.
SCRIPT = b"""\
# -*- coding: utf-8 -*-
import pathlib
import sys
sys.path.insert(0, str(pathlib.Path(sys.executable).parent.parent / "lib/python3.11/site-packages"))
from hello_mod import main
if __name__ == "__main__":
    sys.exit(main())
"""

LIBDEP_C = "int dep_value(void) { return 42; }\n"
EXT_C = "int dep_value(void);\nint answer(void) { return dep_value(); }\n"


def _cc(src: Path, out: Path, *args: str) -> None:
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(src), *args], check=True)


def build_staged_app(staging: Path, sources: Path, *, dtags: str = "--enable-new-dtags") -> Path:
    """A staged tree as the install stage leaves it: staging shebangs, absolute RPATHs."""
    app = make_app(staging, interpreter=PYTHON)
    lib = app / "python" / "lib"
    sources.mkdir(exist_ok=True)
    (sources / "dep.c").write_text(LIBDEP_C)
    (sources / "ext.c").write_text(EXT_C)
    _cc(sources / "dep.c", lib / "libdep.so", "-Wl,-soname,libdep.so")
    (app / SITE / "pkg").mkdir(parents=True)
    _cc(
        sources / "ext.c",
        app / SITE / "pkg" / "_ext.so",
        f"-L{lib}",
        "-ldep",
        f"-Wl,-rpath,{lib}",
        f"-Wl,{dtags}",
    )
    console_script(app, "hello", SCRIPT)
    console_script(app, "pip3", b"import sys\n")
    dist_info(
        app,
        "hello",
        "1.0",
        {"hello_mod.py": MODULE},
        installed=("../../../bin/hello", "pkg/_ext.so"),
        extra={"REQUESTED": b"", "direct_url.json": f'{{"url": "file://{staging}/src"}}'.encode()},
    )
    # a stale timestamp-mode pyc, as an install with bytecode compilation would leave
    py_compile.compile(str(app / SITE / "hello_mod.py"), doraise=True)
    write(app / SITE / "py2data" / "bad.py", b"print 'python 2'\n")
    return app


def run_relocate(app: Path, staging: Path, final: PurePosixPath = FINAL) -> RelocationReport:
    return relocate(
        app,
        final_root=final,
        staging_root=staging,
        expose=None,
        patchelf=Patchelf.default(),
        compiler=None,
    )


@pytest.fixture(scope="module")
def tools() -> None:
    if not PYTHON.exists():
        pytest.skip(f"{PYTHON} not installed")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")


@pytest.fixture(scope="module")
def relocated(
    tools: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RelocationReport]:
    base = tmp_path_factory.mktemp("reloc")
    staging = base / "builder-stage-1"
    app = build_staged_app(staging, base / "src")
    report = run_relocate(app, staging)
    return app, report


def test_report(relocated: tuple[Path, RelocationReport]) -> None:
    _app, report = relocated
    assert (report.scripts, report.trampolines, report.elfs, report.removed, report.records) == (
        2,
        1,
        1,
        2,
        1,
    )
    assert report.pycs == 1  # hello_mod.py; bad.py does not compile
    assert report.warnings == (f"{SITE}/py2data/bad.py: does not compile, left without .pyc",)


def test_rpath_is_origin_relative(relocated: tuple[Path, RelocationReport]) -> None:
    app, _report = relocated
    info = read_elf(app / SITE / "pkg" / "_ext.so")
    assert info.runpath == ("$ORIGIN/../../..",)
    assert info.rpath == ()


def test_dt_rpath_stays_rpath(tools: None, tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app = build_staged_app(staging, tmp_path / "src", dtags="--disable-new-dtags")
    assert read_elf(app / SITE / "pkg" / "_ext.so").rpath == (str(app / "python" / "lib"),)
    run_relocate(app, staging)
    info = read_elf(app / SITE / "pkg" / "_ext.so")
    assert (info.rpath, info.runpath) == (("$ORIGIN/../../..",), ())


def test_pyc_is_unchecked_hash_with_the_shared_root(
    relocated: tuple[Path, RelocationReport],
) -> None:
    app, _report = relocated
    data = (app / SITE / "__pycache__" / "hello_mod.cpython-311.pyc").read_bytes()
    flags = int.from_bytes(data[4:8], "little")
    assert flags == 0b01  # hash-based, check_source off: the stale timestamp pyc was replaced
    code = marshal.loads(data[16:])
    # not FINAL: the same root for every app (the loader puts the real path in, see below)
    assert code.co_filename == f"/opt/apps/_/{SITE}/hello_mod.py"
    assert str(PYC_ROOT) == "/opt/apps/_"


def test_traceback_names_where_the_source_is(
    relocated: tuple[Path, RelocationReport], tmp_path: Path
) -> None:
    """A real interpreter imports the module from its .pyc in a moved copy of the relocated
    tree and raises: the traceback, inspect and the code objects (nested ones too) name the
    copy's source file, with its lines, never the root compiled into the .pyc."""
    app, _report = relocated
    copy = _moved_copies(app, tmp_path)[0]
    site = copy / SITE
    pyc = site / "__pycache__" / "hello_mod.cpython-311.pyc"
    assert marshal.loads(pyc.read_bytes()[16:]).co_filename.startswith("/opt/apps/_/")
    code = (
        "import inspect, sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import hello_mod\n"
        "print(hello_mod.__cached__)\n"
        "print(inspect.getsourcefile(hello_mod.fail))\n"
        "print(hello_mod.fail.__code__.co_filename)\n"
        "hello_mod.fail()\n"
    )
    proc = subprocess.run([str(PYTHON), "-I", "-v", "-c", code], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, check=False)
    source = site / "hello_mod.py"
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [str(pyc), str(source), str(source)]
    # the code came from the .pyc (-v: "code object from"), not from compiling the source
    assert f"code object from {str(pyc)!r}" in proc.stderr
    traceback = proc.stderr[proc.stderr.index("Traceback (most recent call last):"):]
    assert f'File "{source}", line 13, in fail\n    return inner()' in traceback
    assert (f'File "{source}", line 12, in inner\n'
            '    raise LookupError("raised inside hello_mod")') in traceback
    assert "LookupError: raised inside hello_mod" in traceback
    assert "/opt/apps/" not in proc.stderr


def test_pyc_bytes_do_not_depend_on_the_app_name(tools: None, tmp_path: Path) -> None:
    """Two apps (two final roots) compile the same source to the same .pyc bytes."""
    trees = []
    for name in ("one", "another-app"):
        staging = tmp_path / name
        app = build_staged_app(staging, tmp_path / f"src-{name}")
        run_relocate(app, staging, PurePosixPath(f"/opt/apps/{name}"))
        trees.append(app)
    pycs = [sorted(p.relative_to(tree) for p in tree.rglob("*.pyc")) for tree in trees]
    assert pycs[0] == pycs[1] == [Path(SITE, "__pycache__", "hello_mod.cpython-311.pyc")]
    for rel in pycs[0]:
        assert (trees[0] / rel).read_bytes() == (trees[1] / rel).read_bytes(), rel


def _moved_copies(app: Path, base: Path) -> list[Path]:
    copies = []
    for name in ("dest one", "dest2"):
        target = base / name / "app"
        shutil.copytree(app, target, symlinks=True)
        copies.append(target)
    return copies


def test_relocated_app_runs_anywhere(
    relocated: tuple[Path, RelocationReport], tmp_path: Path
) -> None:
    app, _report = relocated
    copies = _moved_copies(app, tmp_path)
    staging = app.parent
    staging.rename(staging.with_name(staging.name + "-gone"))
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        for copy in copies:
            link = tmp_path / f"link-{copy.parent.name.replace(' ', '_')}"
            link.symlink_to(copy / "bin" / "hello")
            for argv, cwd, argv0 in [
                ([str(copy / "bin" / "hello")], elsewhere, "hello"),
                ([str(copy / "python" / "bin" / "hello")], elsewhere, "hello"),
                ([str(link)], elsewhere, link.name),
                (["bin/hello"], copy, "hello"),
                (["sh", str(link)], Path("/"), link.name),
            ]:
                proc = subprocess.run(
                    argv, cwd=cwd, env=ENV, capture_output=True, text=True, check=False
                )
                assert (proc.returncode, proc.stdout, proc.stderr) == (
                    0,
                    f"hello from hello_mod 42 argv0={argv0}\n",
                    "",
                ), argv
    finally:
        staging.with_name(staging.name + "-gone").rename(staging)


def test_pyc_bytes_do_not_depend_on_the_staging_dir(tools: None, tmp_path: Path) -> None:
    trees = []
    for name in ("stage-a", "stage b longer"):
        staging = tmp_path / name
        app = build_staged_app(staging, tmp_path / f"src-{name}")
        run_relocate(app, staging)
        trees.append(app)
    pycs = [sorted(p.relative_to(tree) for p in tree.rglob("*.pyc")) for tree in trees]
    assert pycs[0] == pycs[1]
    assert pycs[0]
    for rel in pycs[0]:
        assert (trees[0] / rel).read_bytes() == (trees[1] / rel).read_bytes(), rel

    # every other non-ELF file too: scripts, trampolines, RECORD (but for the rows of the .so
    # files, which cc linked with different absolute RPATH strings)
    def content(path: Path) -> list[bytes]:
        return [line for line in path.read_bytes().splitlines() if b".so," not in line]

    for path in sorted(trees[0].rglob("*")):
        rel = path.relative_to(trees[0])
        if path.is_file() and not path.is_symlink() and path.suffix != ".so":
            assert content(path) == content(trees[1] / rel), rel


def test_leftover_staging_path_is_reported(tools: None, tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app = build_staged_app(staging, tmp_path / "src")
    write(app / "python" / "share" / "hello" / "config.txt", f"root={app}\n".encode())
    with pytest.raises(BuilderError) as info:
        run_relocate(app, staging)
    assert info.value.what == (
        f"1 file still contains the staging path ({staging}) after relocation:\n"
        "  python/share/hello/config.txt"
    )
    assert info.value.where == str(app)


def test_pyc_env_does_not_leak(
    tools: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "poison"))
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "poison"))
    staging = tmp_path / "stage"
    app = build_staged_app(staging, tmp_path / "src")
    report = run_relocate(app, staging)
    assert report.pycs == 1
    assert os.environ["PYTHONHOME"]  # the caller's environment is untouched
