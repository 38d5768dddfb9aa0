"""Recognising a CPython prefix, choosing its files, and removing the host prefix from texts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.cpython.importer import imported_filename, rewrite_texts, stage_prefix
from builder.cpython.prefix import keep, probe_prefix, triple_from_multiarch
from builder.cpython.rewrite import (
    TRAMPOLINE,
    prefix_pattern,
    python_shebang,
    relocatable_script,
    replace_prefix,
)
from builder.errors import BuilderError

FAKE_ELF = b"\x7fELF not really\n"


def write(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def fake_prefix(root: Path, *, pip: bool = True) -> Path:
    """A pyenv-like prefix (fake ELF files; enough for probing and staging)."""
    p = str(root)
    write(root / "bin/python3.11", FAKE_ELF, 0o755)
    (root / "bin/python3").symlink_to("python3.11")
    (root / "bin/python").symlink_to(root / "bin/python3.11")  # absolute link inside prefix
    write(root / "bin/python3.11-config", f'#!/bin/sh\nprefix="{p}"\n', 0o755)
    write(root / "bin/pip3.11", f"#!{p}/bin/python3.11\nimport pip\n", 0o755)
    write(root / "bin/ipython", f"#!{p}/bin/python3.11\nimport IPython\n", 0o755)
    write(root / "bin/pydoc3.11", f"#!{p}/bin/python3.11\nimport pydoc\n", 0o755)
    write(root / "bin/__pycache__/x.pyc", b"\0")
    write(root / "include/python3.11/patchlevel.h", '#define PY_VERSION        "3.11.7"\n')
    write(root / "lib/libpython3.11.so.1.0", FAKE_ELF, 0o755)
    (root / "lib/libpython3.11.so").symlink_to("libpython3.11.so.1.0")
    write(root / "lib/libpython3.11.a", b"!<arch>\n")
    write(root / "lib/pkgconfig/python-3.11.pc", f"prefix={p}\nlibdir=${{prefix}}/lib\n")
    write(root / "lib/pkgconfig/zlib.pc", "not ours\n")
    write(root / "lib/libother.so.1", FAKE_ELF)
    std = root / "lib/python3.11"
    write(std / "os.py", "# os\n")
    write(std / "__pycache__/os.cpython-311.pyc", b"\0")
    write(std / "_sysconfigdata__linux_x86_64-linux-gnu.py",
          f"build_time_vars = {{'prefix': '{p}', 'LIBDIR': '{p}/lib', 'other': '{p}-other'}}\n")
    write(std / "config-3.11-x86_64-linux-gnu/Makefile", f"prefix=\t\t{p}\n")
    write(std / "config-3.11-x86_64-linux-gnu/libpython3.11.a", b"!<arch>\n")
    write(std / "test/test_os.py", "")
    write(std / "json/__init__.py", "")
    write(std / "lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", FAKE_ELF, 0o755)
    site = std / "site-packages"
    write(site / "README.txt", "")
    write(site / "numpy/__init__.py", "")
    write(site / "distutils-precedence.pth", "")
    if pip:
        write(site / "pip/__init__.py", "")
        write(site / "pip-23.2.1.dist-info/RECORD", "")
    write(root / "share/man/man1/python3.11.1", "")
    return root


def test_probe_prefix(tmp_path: Path) -> None:
    info = probe_prefix(fake_prefix(tmp_path / "py"))
    assert (info.python_version, info.minor, info.triple, info.link_mode, info.has_pip) == (
        "3.11.7", "3.11", "x86_64-unknown-linux-gnu", "shared", True)
    assert imported_filename(info) == (
        "cpython-3.11.7+imported-x86_64-unknown-linux-gnu-install_only.tar.gz")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such directory"),
        (lambda p: (p / "bin").mkdir(parents=True), "no bin/python3.X executable"),
        (lambda p: write(p / "bin/python3.11", "#!/bin/sh\n"),
         "bin/python3.11 is not an ELF executable"),
        (lambda p: write(p / "bin/python3.11", FAKE_ELF), "no standard library at lib/python3.11/"),
        (lambda p: (write(p / "bin/python3.11", FAKE_ELF), write(p / "lib/python3.11/os.py", "")),
         "no PY_VERSION in include/python3.11/patchlevel.h"),
    ],
)
def test_probe_prefix_errors(tmp_path: Path, setup: object, message: str) -> None:
    prefix = tmp_path / "p"
    setup(prefix)  # type: ignore[operator]
    with pytest.raises(BuilderError) as info:
        probe_prefix(prefix)
    assert str(info.value).startswith(f"{prefix}: not a CPython installation: {message}")
    assert "pyenv prefix 3.11.7" in str(info.value.hint)


@pytest.mark.parametrize(
    ("path", "is_dir", "kept"),
    [
        ("bin", True, True),
        ("bin/python3.11", False, True),
        ("bin/pip3", False, True),
        ("bin/idle3", False, True),
        ("bin/2to3-3.11", False, True),
        ("bin/ipython", False, False),
        ("bin/__pycache__", True, False),
        ("include/python3.11/Python.h", False, True),
        ("include/ncurses.h", False, False),
        ("lib/libpython3.11.so.1.0", False, True),
        ("lib/libpython3.11.a", False, False),
        ("lib/libssl.so.3", False, False),
        ("lib/pkgconfig/python3.pc", False, True),
        ("lib/pkgconfig/zlib.pc", False, False),
        ("lib/python3.11/os.py", False, True),
        ("lib/python3.11/test", True, False),
        ("lib/python3.11/unittest/test", True, True),
        ("lib/python3.11/json/__pycache__", True, False),
        ("lib/python3.11/config-3.11-x86_64-linux-gnu/Makefile", False, True),
        ("lib/python3.11/config-3.11-x86_64-linux-gnu/libpython3.11.a", False, False),
        ("lib/python3.11/site-packages", True, True),
        ("lib/python3.11/site-packages/README.txt", False, True),
        ("lib/python3.11/site-packages/pip", True, True),
        ("lib/python3.11/site-packages/pip/_internal/main.py", False, True),
        ("lib/python3.11/site-packages/pip-23.2.1.dist-info", True, True),
        ("lib/python3.11/site-packages/pipx", True, False),
        ("lib/python3.11/site-packages/numpy", True, False),
        ("lib/python3.11/site-packages/a.pth", False, False),
        ("lib/python3.10/os.py", False, False),
        ("share/man", True, False),
    ],
)
def test_keep(path: str, is_dir: bool, kept: bool) -> None:
    assert keep(tuple(path.split("/")), is_dir=is_dir, minor="3.11", has_pip=True) is kept


def test_keep_without_pip() -> None:
    assert not keep(("bin", "pip3"), is_dir=False, minor="3.11", has_pip=False)
    assert not keep(("lib", "python3.11", "site-packages", "pip"), is_dir=True, minor="3.11",
                    has_pip=False)


@pytest.mark.parametrize(
    ("multiarch", "triple"),
    [
        ("x86_64-linux-gnu", "x86_64-unknown-linux-gnu"),
        ("aarch64-linux-gnu", "aarch64-unknown-linux-gnu"),
        ("i386-linux-gnu", "i686-unknown-linux-gnu"),
        ("x86_64-linux-musl", "x86_64-unknown-linux-musl"),
        ("darwin", None),
    ],
)
def test_triple_from_multiarch(multiarch: str, triple: str | None) -> None:
    assert triple_from_multiarch(multiarch) == triple


def _files(tree: Path) -> list[str]:
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if not p.is_dir())


def test_stage_and_rewrite(tmp_path: Path) -> None:
    prefix = fake_prefix(tmp_path / "py 3")
    info = probe_prefix(prefix)
    tree = tmp_path / "stage" / "python"
    stage_prefix(info, tree)
    rewrite_texts(info, tree)
    assert _files(tree) == [
        "bin/pip3.11",
        "bin/pydoc3.11",
        "bin/python",
        "bin/python3",
        "bin/python3.11",
        "bin/python3.11-config",
        "include/python3.11/patchlevel.h",
        "lib/libpython3.11.so",
        "lib/libpython3.11.so.1.0",
        "lib/pkgconfig/python-3.11.pc",
        "lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py",
        "lib/python3.11/config-3.11-x86_64-linux-gnu/Makefile",
        "lib/python3.11/json/__init__.py",
        "lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
        "lib/python3.11/os.py",
        "lib/python3.11/site-packages/README.txt",
        "lib/python3.11/site-packages/pip-23.2.1.dist-info/RECORD",
        "lib/python3.11/site-packages/pip/__init__.py",
    ]
    assert os.readlink(tree / "bin/python3") == "python3.11"
    assert os.readlink(tree / "bin/python") == "python3.11"  # absolute link made relative
    assert os.readlink(tree / "lib/libpython3.11.so") == "libpython3.11.so.1.0"
    pip = (tree / "bin/pip3.11").read_text()
    assert pip == TRAMPOLINE.format(exe="python3.11") + "import pip\n"
    assert (tree / "bin/python3.11-config").read_text() == '#!/bin/sh\nprefix="/install"\n'
    assert (tree / "lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py").read_text() == (
        "build_time_vars = {'prefix': '/install', 'LIBDIR': '/install/lib', "
        f"'other': '{prefix}-other'}}\n"
    )
    assert (tree / "lib/pkgconfig/python-3.11.pc").read_text().startswith("prefix=/install\n")
    assert (tree / "bin/python3.11").stat().st_mode & 0o777 == 0o755
    assert (tree / "lib/python3.11/os.py").stat().st_mode & 0o777 == 0o644


def test_prefix_pattern_matches_whole_paths_only() -> None:
    pattern = prefix_pattern(["/opt/py", "/real/opt/py/"])
    data = b"/opt/py /opt/py/lib '/opt/py' /opt/python /opt/py-2 x/opt/py:/real/opt/py\n"
    assert replace_prefix(data, pattern, "/install") == (
        b"/install /install/lib '/install' /opt/python /opt/py-2 x/install:/install\n")


def test_python_shebang_and_trampoline() -> None:
    pattern = prefix_pattern(["/opt/py"])
    assert python_shebang(b"#!/opt/py/bin/python3.11\nx\n", pattern)
    assert python_shebang(b"#! /opt/py/bin/python\n", pattern)
    assert not python_shebang(b"#!/bin/sh\n/opt/py/bin/python3\n", pattern)
    assert not python_shebang(b"#!/opt/python/bin/python3\n", pattern)
    assert relocatable_script(b"#!/opt/py/bin/python3.11\nbody\n", exe="python3.11") == (
        b"#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/'python3.11' "
        b"\"$0\" \"$@\"\n' '''\nbody\n"
    )


def test_the_system_prefix_is_replaced_only_where_it_is_pythons() -> None:
    pattern = prefix_pattern(["/usr", "/srv/root/usr"])
    data = (b"'prefix': '/usr', 'TZPATH': '/usr/share/zoneinfo:/usr/lib/zoneinfo', "
            b"'LIBDEST': '/usr/lib/python3.11', '/usr/include/python3.11', "
            b"'/usr/lib/libpython3.11.so', #!/usr/bin/env python3, /usr/bin/python3.11 "
            b"/srv/root/usr/share\n")
    assert replace_prefix(data, pattern, "/install") == (
        b"'prefix': '/install', 'TZPATH': '/usr/share/zoneinfo:/usr/lib/zoneinfo', "
        b"'LIBDEST': '/install/lib/python3.11', '/install/include/python3.11', "
        b"'/install/lib/libpython3.11.so', #!/usr/bin/env python3, /install/bin/python3.11 "
        b"/install/share\n")
    assert python_shebang(b"#!/usr/bin/python3.11\n", pattern)
