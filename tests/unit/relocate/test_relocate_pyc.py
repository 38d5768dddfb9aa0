from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest
from relocate_factories import make_app

from builder.errors import BuilderError
from builder.relocate.pyc import (
    PYC_ROOT,
    RUN_COMPILEALL,
    child_env,
    compileall_argv,
    count_sources,
    parse_failures,
    select_pyc_compiler,
)

APP = Path("/tmp/stage 1/app")
_SCHEMA = Path(__file__).parents[3] / "builder" / "recipe" / "recipe.schema.json"
RECIPE_NAME = json.loads(_SCHEMA.read_text())["properties"]["app"]["properties"]["name"][
    "pattern"
]


def test_compileall_argv() -> None:
    argv = compileall_argv(
        APP / "python/bin/python3.11",
        app_root=APP,
        dirs=(APP / "python/lib/python3.11",),
    )
    assert argv == (
        "/tmp/stage 1/app/python/bin/python3.11",
        "-c",
        RUN_COMPILEALL,
        "-q",
        "-f",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        "/tmp/stage 1/app",
        "-p",
        "/opt/apps/_",  # the same for every app: the stdlib's .pyc are shared across apps
        "/tmp/stage 1/app/python/lib/python3.11",
    )


def test_the_embedded_root_cannot_be_an_app() -> None:
    # a recipe's name starts with [a-z0-9] (recipe.schema.json), so no app is mounted there
    name = PYC_ROOT.name
    assert PYC_ROOT.parent == PurePosixPath("/opt/apps")
    assert not re.match(RECIPE_NAME, name)


def test_child_env_is_minimal_and_explicit() -> None:
    assert child_env() == {
        "PATH": "/usr/bin:/bin",
        "PYTHONHASHSEED": "0",
        "PYTHONUTF8": "1",
        "PYTHONNOUSERSITE": "1",
    }


def test_parse_failures() -> None:
    output = (
        "*** Error compiling "
        "'/tmp/stage 1/app/python/lib/python3.11/lib2to3/tests/data/py2.py'...\n"
        '  File "/opt/apps/demo/python/lib/python3.11/lib2to3/tests/data/py2.py", line 1\n'
        "    print 'x'\n"
        "SyntaxError: Missing parentheses in call to 'print'.\n"
        "*** Error compiling '/elsewhere/x.py'...\n"
        '*** Error compiling "/tmp/stage 1/app/it\'s.py"...\n'
    )
    assert parse_failures(output, APP) == (
        "/elsewhere/x.py",
        "it's.py",
        "python/lib/python3.11/lib2to3/tests/data/py2.py",
    )


def test_count_sources_skips_symlinked_dirs(tmp_path: Path) -> None:
    (tmp_path / "a" / "__pycache__").mkdir(parents=True)
    (tmp_path / "a" / "m.py").write_text("")
    (tmp_path / "a" / "n.txt").write_text("")
    (tmp_path / "b.py").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert count_sources((tmp_path,)) == 2


def test_no_runnable_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    app = make_app(tmp_path)  # python3.11 is a fake ELF: it cannot be read nor run
    with pytest.raises(BuilderError) as info:
        select_pyc_compiler(
            app, PurePosixPath("python/bin/python3.11"), minor="3.11", arch="x86_64"
        )
    assert info.value.what == (
        "cannot compile .pyc files: the bundle's interpreter (missing) does not run on this "
        "x86_64 host and no host Python 3.11 was given"
    )
    assert info.value.hint == "pass a host Python 3.11 to compile with"


def test_host_python_that_does_not_run(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(BuilderError, match=r"is version unknown \(it does not run\)"):
        select_pyc_compiler(
            app,
            PurePosixPath("python/bin/python3.11"),
            minor="3.11",
            host_python=tmp_path / "nope",
            arch="x86_64",
        )
