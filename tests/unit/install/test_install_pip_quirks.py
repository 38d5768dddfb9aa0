"""install_wheels lays wheels out as pip does (pip/_internal/operations/install/wheel.py), with
wheels fabricated by tests/factories.py; one quirk per test."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import WheelMember, fake_wheel, record_hash

from builder.install import install_wheels
from builder.install.destination import pip_console_script, pip_script_names, pip_shebang

MINOR = "3.11"
SITE = f"lib/python{MINOR}/site-packages"


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    python_dir = tmp_path / "app" / "python"
    (python_dir / "bin").mkdir(parents=True)
    (python_dir / SITE).mkdir(parents=True)
    return python_dir


def interp(prefix: Path) -> str:
    return str(prefix / "bin" / f"python{MINOR}")


def install(prefix: Path, *wheels: Path) -> None:
    install_wheels([(w, "0" * 64) for w in wheels], python_dir=prefix, minor=MINOR)


def record_rows(prefix: Path, dist_info: str) -> list[list[str]]:
    text = (prefix / SITE / dist_info / "RECORD").read_text()
    return list(csv.reader(io.StringIO(text)))


def test_entry_point_wins_over_a_data_script_of_the_same_name(tmp_path: Path,
                                                               prefix: Path) -> None:
    # jupyter_contrib_core 0.4.0 ships jupyter-contrib both ways; pip skips the data script
    # (is_entrypoint_wrapper) and writes the entry point's launcher
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo/__init__.py", b"def main():\n    pass\n"),
        WheelMember("demo-1.0.data/scripts/demo-tool", b"#!python\nprint('data script')\n", 0o755),
        WheelMember("demo-1.0.data/scripts/demo-tool-script.py", b"#!python\nprint('old')\n"),
        WheelMember("demo-1.0.data/scripts/demo-tool.exe", b"MZ not really\n"),
    ], entry_points="[console_scripts]\ndemo-tool = demo:main\n")
    install(prefix, wheel)
    script = prefix / "bin" / "demo-tool"
    assert script.read_bytes() == pip_console_script(interp(prefix), "demo", "main")
    assert script.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in (prefix / "bin").iterdir()) == ["demo-tool"]
    rows = record_rows(prefix, "demo-1.0.dist-info")
    assert ["../../../bin/demo-tool", record_hash(script.read_bytes()),
            str(len(script.read_bytes()))] in rows
    assert not [r for r in rows if ".data/" in r[0]]


def test_entry_point_launcher_is_pips_template() -> None:
    assert pip_console_script("/p/bin/python3.11", "pkg.cli", "App.run") == (
        b"#!/p/bin/python3.11\n"
        b"import sys\n"
        b"from pkg.cli import App\n"
        b"if __name__ == '__main__':\n"
        b"    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n"
        b"    sys.exit(App.run())\n"
    )


@pytest.mark.parametrize(("interpreter", "expected"), [
    ("/short/python3.11", b"#!/short/python3.11\n"),
    ("/with space/python3.11",
     b"#!/bin/sh\n'''exec' '/with space/python3.11' \"$0\" \"$@\"\n' '''\n"),
    ("/" + "x" * 130 + "/python3.11",
     b"#!/bin/sh\n'''exec' /" + b"x" * 130 + b"/python3.11 \"$0\" \"$@\"\n' '''\n"),
])
def test_launcher_shebang_follows_distlib(interpreter: str, expected: bytes) -> None:
    assert pip_shebang(interpreter) == expected


def test_gui_entry_point_is_a_plain_launcher_too(tmp_path: Path, prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [WheelMember("demo/__init__.py", b"")],
                       entry_points="[gui_scripts]\ndemo-gui = demo:gui\n")
    install(prefix, wheel)
    assert (prefix / "bin" / "demo-gui").read_bytes() == pip_console_script(
        interp(prefix), "demo", "gui")


@pytest.mark.parametrize(("first_line", "rest"), [
    (b"#!python\n", b"print('lf')\n"),
    (b"#!python\r\n", b"print('crlf')\r\nprint('kept')\r\n"),
    (b"#!pythonw\n", b"print('gui')\n"),
    (b"#!python3 -u\r\n", b"x = 1\r\n"),
])
def test_data_scripts_with_hash_bang_python_get_the_interpreter(
        tmp_path: Path, prefix: Path, first_line: bytes, rest: bytes) -> None:
    # pip fix_script: the whole first line becomes "#!<python>" + os.linesep, the rest is kept
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo-1.0.data/scripts/tool", first_line + rest, 0o755),
    ])
    install(prefix, wheel)
    script = prefix / "bin" / "tool"
    assert script.read_bytes() == f"#!{interp(prefix)}\n".encode() + rest
    assert script.stat().st_mode & 0o777 == 0o755
    row = next(r for r in record_rows(prefix, "demo-1.0.dist-info") if r[0].endswith("bin/tool"))
    assert row[1] == record_hash(script.read_bytes())


def test_other_data_scripts_keep_their_bytes_and_zip_mode(tmp_path: Path, prefix: Path) -> None:
    crlf = b"#!/bin/sh\r\necho hi\r\n"
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo-1.0.data/scripts/run.sh", crlf, 0o755),
        WheelMember("demo-1.0.data/scripts/notes.txt", b"#!python\nnot executable\n", 0o644),
    ])
    install(prefix, wheel)
    assert (prefix / "bin" / "run.sh").read_bytes() == crlf
    assert (prefix / "bin" / "run.sh").stat().st_mode & 0o777 == 0o755
    # no exec bit in the zip: pip writes it 0o666 & ~umask, shebang still fixed
    notes = prefix / "bin" / "notes.txt"
    assert notes.stat().st_mode & 0o777 == 0o644
    assert notes.read_bytes().startswith(f"#!{interp(prefix)}\n".encode())


def test_executable_bits_come_from_the_zip(tmp_path: Path, prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo/tool.sh", b"#!/bin/sh\n", 0o750),
        WheelMember("demo/data.txt", b"data\n", 0o600),
    ])
    install(prefix, wheel)
    assert (prefix / SITE / "demo/tool.sh").stat().st_mode & 0o777 == 0o755
    assert (prefix / SITE / "demo/data.txt").stat().st_mode & 0o777 == 0o644


def test_headers_go_under_include_python_dist_name(tmp_path: Path, prefix: Path) -> None:
    # pip get_scheme (no virtualenv): headers = <prefix>/include/python3.X/<name from file name>
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("Demo_Pkg-1.0.data/headers/demo.h", b"#define DEMO 1\n"),
        WheelMember("Demo_Pkg-1.0.data/headers/sub/inner.h", b"/* inner */\n"),
    ], name="Demo_Pkg")
    install(prefix, wheel)
    include = prefix / "include" / f"python{MINOR}" / "demo-pkg"
    assert (include / "demo.h").read_bytes() == b"#define DEMO 1\n"
    assert (include / "sub" / "inner.h").is_file()
    rows = [r[0] for r in record_rows(prefix, "Demo_Pkg-1.0.dist-info")]
    assert f"../../../include/python{MINOR}/demo-pkg/demo.h" in rows


def test_data_purelib_platlib_land_in_prefix_and_site_packages(tmp_path: Path,
                                                                prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo-1.0.data/data/share/jupyter/nbextensions/demo/main.js", b"js\n"),
        WheelMember("demo-1.0.data/data/etc/jupyter/demo.json", b"{}\n"),
        WheelMember("demo-1.0.data/purelib/demo_pure.py", b"P = 1\n"),
        WheelMember("demo-1.0.data/platlib/demo_plat.py", b"Q = 1\n"),
    ], root_is_purelib=False)
    install(prefix, wheel)
    assert (prefix / "share/jupyter/nbextensions/demo/main.js").read_bytes() == b"js\n"
    assert (prefix / "etc/jupyter/demo.json").is_file()
    assert (prefix / SITE / "demo_pure.py").is_file()
    assert (prefix / SITE / "demo_plat.py").is_file()


def test_data_dir_is_found_whatever_the_file_name_spells(tmp_path: Path, prefix: Path) -> None:
    # a normalised file name, the zip's own spelling inside: pip goes by "*.data"
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("Demo.Pkg-1.0.data/scripts/tool", b"#!/bin/sh\n", 0o755),
    ], name="Demo.Pkg", filename="demo_pkg-1.0-py3-none-any.whl")
    install(prefix, wheel)
    assert (prefix / "bin" / "tool").is_file()
    assert not (prefix / SITE / "Demo.Pkg-1.0.data").exists()


def test_within_one_wheel_the_later_member_wins_in_pips_order(tmp_path: Path,
                                                               prefix: Path) -> None:
    # pip: root files, then other .data files, then scripts; launchers last (clobber)
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo-1.0.data/purelib/dup.py", b"FROM = 'data'\n"),
        WheelMember("dup.py", b"FROM = 'root'\n"),
        WheelMember("demo-1.0.data/data/bin/demo-tool", b"#!/bin/sh\necho data\n", 0o755),
        WheelMember("demo/__init__.py", b"def main():\n    pass\n"),
    ], entry_points="[console_scripts]\ndemo-tool = demo:main\n")
    install(prefix, wheel)
    assert (prefix / SITE / "dup.py").read_bytes() == b"FROM = 'data'\n"
    launcher = prefix / "bin" / "demo-tool"
    assert launcher.read_bytes() == pip_console_script(interp(prefix), "demo", "main")
    rows = record_rows(prefix, "demo-1.0.dist-info")
    assert [r[0] for r in rows].count("dup.py") == 1
    assert [r[0] for r in rows].count("../../../bin/demo-tool") == 1


def test_record_is_sorted_complete_and_true(tmp_path: Path, prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [
        WheelMember("demo/__init__.py", b"def main():\n    pass\n"),
        WheelMember("demo-1.0.data/data/share/demo.txt", b"text\n"),
        WheelMember("demo-1.0.data/scripts/tool", b"#!python\r\nrun()\r\n", 0o755),
    ], entry_points="[console_scripts]\ndemo = demo:main\n")
    install(prefix, wheel)
    site = prefix / SITE
    rows = record_rows(prefix, "demo-1.0.dist-info")
    paths = [r[0] for r in rows]
    assert paths == sorted(paths)
    assert set(paths) == {
        "../../../bin/demo", "../../../bin/tool", "../../../share/demo.txt", "demo/__init__.py",
        "demo-1.0.dist-info/INSTALLER", "demo-1.0.dist-info/METADATA",
        "demo-1.0.dist-info/RECORD", "demo-1.0.dist-info/WHEEL",
        "demo-1.0.dist-info/entry_points.txt",
    }
    for path, digest, size in rows:
        if path.endswith("/RECORD"):
            assert (digest, size) == ("", "")
            continue
        data = (site / path).resolve().read_bytes()
        assert (digest, size) == (record_hash(data), str(len(data)))
    assert (site / "demo-1.0.dist-info/INSTALLER").read_bytes() == b"builder\n"


def test_pip_and_easy_install_get_pips_versioned_launchers() -> None:
    # pip get_console_script_specs: pip, pip3, pip3.X for the interpreter it installs for;
    # the wheel's own versioned names (made on the build machine's Python) are dropped
    pip, ez, other = ("pip._internal.cli.main", "main"), ("setuptools", "ei"), ("x", "y")
    names = pip_script_names(
        {"pip": pip, "pip3": pip, "pip3.9": pip, "easy_install": ez, "easy_install-3.9": ez,
         "pipx": other}, "3.11")
    assert names == (("pip", pip), ("pip3", pip), ("pip3.11", pip), ("easy_install", ez),
                     ("easy_install-3.11", ez), ("pipx", other))


def test_a_pip_wheel_gets_pip3_x_for_the_target(tmp_path: Path, prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [WheelMember("pip/__init__.py", b"")], name="pip",
                       version="25.0", entry_points="[console_scripts]\npip = pip:main\n"
                                                    "pip3 = pip:main\npip3.13 = pip:main\n")
    install(prefix, wheel)
    assert sorted(p.name for p in (prefix / "bin").iterdir()) == ["pip", "pip3", "pip3.11"]
    rows = [r[0] for r in record_rows(prefix, "pip-25.0.dist-info")]
    assert [r for r in rows if r.startswith("../")] == [
        "../../../bin/pip", "../../../bin/pip3", "../../../bin/pip3.11"]
