"""Real wheels with install quirks, installed by builder and by pip into two prefixes: the trees
must be the same up to the differences documented in ``normalised_tree``.

pip is the venv's own pip, run by the venv's base interpreter (``sys.base_prefix``) so it lays out
a plain ``--prefix`` as it does outside a virtualenv (headers under ``include/python3.X/<name>``
rather than the virtualenv's ``include/site/...``), isolated from any host pip configuration.
The wheels are pinned by sha256 and cached under the repository's .cache between runs.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import WheelMember, fake_wheel, record_hash

from builder.install import install_wheels
from builder.relocate.scripts import parse_python_script

pytestmark = pytest.mark.integration

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
SITE = f"lib/python{MINOR}/site-packages"

# (requirement, wheel file name, sha256, the quirk it brings)
WHEELS = [
    ("jupyter_contrib_core==0.4.0", "jupyter_contrib_core-0.4.0-py2.py3-none-any.whl",
     "5e77cdff5c73f5ff76b3713c459f928c0dff45eee53ee8c2fe3f26490f4d4270",
     "jupyter-contrib both as a .data/scripts file and a console entry point"),
    ("docutils==0.16", "docutils-0.16-py2.py3-none-any.whl",
     "0c5b78adfbf7762415433f5515cd5c9e762339e23369dbe8000d84a4bf4ab3af",
     "#!python .data/scripts (rst2html.py, ...)"),
    ("widgetsnbextension==4.0.13", "widgetsnbextension-4.0.13-py3-none-any.whl",
     "74b2692e8500525cc38c2b877236ba51d34541e6385eeed5aec15a70f88a6c71",
     ".data/data: share/jupyter/nbextensions, etc/jupyter"),
    ("notebook==6.5.7", "notebook-6.5.7-py3-none-any.whl",
     "a6afa9a4ff4d149a0771ff8b8c881a7a73b3835f9add0606696d6e9d98ac1cd0",
     ".data/data (etc/jupyter) and many console entry points"),
]
if MINOR == "3.11" and platform.machine() == "x86_64":
    WHEELS.append(
        ("greenlet==3.1.1",
         "greenlet-3.1.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         "e347b3bfcf985a05e8c0b7d462ba6f15b1ee1c909e2dcad795e49e91b152c383",
         ".data/headers (greenlet.h), platlib, directory entries in the zip"))


def isolated_pip_env(**extra: str) -> dict[str, str]:
    """No host pip configuration (local wheel folders, constraints) reaches pip."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON")) and k != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONNOUSERSITE="1", **extra)
    return env


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def wheelhouse(builder_cache: Path) -> Path:
    """The pinned wheels, downloaded from PyPI once (hash-checked) and kept in the cache."""
    folder = builder_cache / "install-like-pip"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [w for w in WHEELS
               if not (folder / w[1]).is_file() or sha256(folder / w[1]) != w[2]]
    if missing:
        requirements = folder / "requirements.txt"
        requirements.write_text("".join(f"{req} --hash=sha256:{digest}\n"
                                        for req, _name, digest, _why in missing))
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps",
             "--only-binary", ":all:", "--require-hashes", "--index-url",
             "https://pypi.org/simple", "-r", str(requirements), "-d", str(folder)],
            env=isolated_pip_env(), capture_output=True, text=True, check=False, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    for _req, name, digest, _why in WHEELS:
        assert sha256(folder / name) == digest
    return folder


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def base_python() -> Path:
    """The interpreter the test venv was made from: pip run by it sees no virtualenv."""
    exe = Path(sys.base_prefix) / "bin" / f"python{MINOR}"
    if not exe.is_file():
        pytest.skip(f"no base interpreter at {exe}")
    return exe


def pip_install(wheelhouse: Path, prefix: Path, requirements: list[str]) -> Path:
    """pip's own layout for ``pip install --prefix`` (no bytecode: builder compiles later, in
    relocate). Requirements by name from --find-links so pip writes no direct_url.json."""
    python = base_python()
    spec = importlib.util.find_spec("pip")
    assert spec is not None and spec.origin is not None
    venv_site = Path(spec.origin).parents[1]  # this venv's pip, the reference read in review
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--isolated", "--no-deps", "--no-index",
         "--find-links", str(wheelhouse), "--prefix", str(prefix), "--no-compile",
         "--no-warn-script-location", "--root-user-action", "ignore",
         *requirements],
        env=isolated_pip_env(PYTHONPATH=str(venv_site)), capture_output=True, text=True,
        check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return python


def record_rows(tree: Path) -> dict[str, set[tuple[str, str, str]]]:
    """Each dist-info's RECORD rows."""
    rows: dict[str, set[tuple[str, str, str]]] = {}
    for record in sorted((tree / SITE).glob("*.dist-info/RECORD")):
        parsed = csv.reader(io.StringIO(record.read_text(encoding="utf-8")))
        rows[record.parent.name] = {(r[0], r[1], r[2]) for r in parsed}
    return rows


def normalised_tree(tree: Path) -> dict[str, tuple[int, bytes]]:
    """relative path -> (mode, bytes), with the differences we accept taken out:

    - ``bin/*`` python scripts: the interpreter their shebang names (pip: the python running pip;
      builder: the staged ``python/bin/python3.X``); relocate replaces either with the same
      relative trampoline, so only the body after the shebang is compared.
    - ``*.dist-info/INSTALLER``: ``pip`` vs ``builder`` (PEP 376 says who installed it).
    - ``*.dist-info/REQUESTED``: pip marks what the user asked for; builder installs a lock.
    - ``*.dist-info/RECORD``: compared on its own (``test_records_...``), as rows naming files.
    """
    out: dict[str, tuple[int, bytes]] = {}
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_dir():
            out[rel + "/"] = (path.stat().st_mode & 0o7777, b"")
            continue
        name = path.name
        if ".dist-info/" in rel and name in ("INSTALLER", "REQUESTED", "RECORD"):
            continue
        data = path.read_bytes()
        if rel.startswith("bin/"):
            script = parse_python_script(data)
            if script is not None:
                data = b"#!<python>\n" + script.body
        out[rel] = (path.stat().st_mode & 0o7777, data)
    return out


@pytest.fixture(scope="module")
def trees(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(builder's prefix, pip's prefix) for the same wheels, both under umask 022."""
    old = os.umask(0o022)
    try:
        ours = tmp_path_factory.mktemp("builder") / "python"
        ours.mkdir()
        install_wheels([(wheelhouse / name, digest) for _req, name, digest, _why in WHEELS],
                       python_dir=ours, minor=MINOR)
        theirs = tmp_path_factory.mktemp("pip") / "python"
        pip_install(wheelhouse, theirs, [req for req, _name, _digest, _why in WHEELS])
    finally:
        os.umask(old)
    return ours, theirs


def test_builder_lays_out_real_wheels_like_pip(trees: tuple[Path, Path]) -> None:
    ours, theirs = trees
    mine, pips = normalised_tree(ours), normalised_tree(theirs)
    assert sorted(set(mine) ^ set(pips)) == []
    different = {p: (oct(mine[p][0]), oct(pips[p][0])) for p in mine if mine[p] != pips[p]}
    assert different == {}


def test_the_quirks_are_in_the_trees(trees: tuple[Path, Path]) -> None:
    """The comparison above is only worth something if the quirks really were exercised."""
    ours, theirs = trees
    for tree in (ours, theirs):
        launcher = (tree / "bin" / "jupyter-contrib").read_bytes()
        script = parse_python_script(launcher)
        assert script is not None
        # the entry point won over the data script of the same name
        assert script.body.startswith(b"import sys\nfrom jupyter_contrib_core.application ")
        assert parse_python_script((tree / "bin" / "rst2html.py").read_bytes()) is not None
        assert (tree / "bin" / "rst2html.py").stat().st_mode & 0o111
        assert (tree / "share/jupyter/nbextensions/jupyter-js-widgets/extension.js").is_file()
        assert (tree / "etc/jupyter/nbconfig/notebook.d/widgetsnbextension.json").is_file()
        if any(w[0].startswith("greenlet") for w in WHEELS):
            assert (tree / f"include/python{MINOR}/greenlet/greenlet.h").is_file()
    assert (ours / "bin" / "jupyter-contrib").read_bytes().startswith(
        f"#!{ours}/bin/python{MINOR}\n".encode())


def test_records_name_the_same_files_and_are_true(trees: tuple[Path, Path]) -> None:
    ours, theirs = trees
    mine, pips = record_rows(ours), record_rows(theirs)
    assert sorted(mine) == sorted(pips)
    skip = ("/INSTALLER", "/REQUESTED")
    for dist_info in mine:
        site = ours / SITE
        for path, digest, size in mine[dist_info]:
            target = site / path
            assert target.is_file(), f"{dist_info}: RECORD names a missing {path}"
            if not path.endswith("/RECORD"):
                data = target.read_bytes()
                assert (digest, size) == (record_hash(data), str(len(data))), path
        # pip keeps the wheel's row for the data script it skipped in favour of the entry point
        # (get_csv_rows_for_installed), pointing at a file that does not exist; builder lists
        # only what it wrote
        pip_existing = {r[0] for r in pips[dist_info]
                        if (theirs / SITE / r[0]).is_file() and not r[0].endswith(skip)}
        assert {r[0] for r in mine[dist_info] if not r[0].endswith(skip)} == pip_existing


def test_fabricated_quirks_also_install_like_pip(tmp_path: Path, umask_022: None) -> None:
    """What the real wheels above do not show (CRLF, ``#!pythonw``, modes, a renamed ``.data``,
    one wheel writing a path twice, an entry point over a ``.data/data/bin`` file), checked
    against pip the same way."""
    house = tmp_path / "house"
    fake_wheel(house, [
        WheelMember("quirky/__init__.py", b"def main():\n    pass\n"),
        WheelMember("quirky-1.0.data/scripts/crlf-tool", b"#!python\r\nprint(1)\r\n", 0o755),
        WheelMember("quirky-1.0.data/scripts/gui-tool", b"#!pythonw\nprint(2)\n", 0o755),
        WheelMember("quirky-1.0.data/scripts/plain.txt", b"#!python -u\nnot executable\n"),
        WheelMember("quirky-1.0.data/scripts/run.sh", b"#!/bin/sh\r\necho hi\r\n", 0o750),
        WheelMember("quirky-1.0.data/scripts/quirky", b"#!python\nold wrapper\n", 0o755),
        WheelMember("quirky-1.0.data/headers/quirky.h", b"#define Q 1\n"),
        WheelMember("quirky-1.0.data/data/share/quirky/readme.txt", b"r\n", 0o600),
        WheelMember("quirky-1.0.data/data/bin/quirky-gui", b"#!/bin/sh\n", 0o755),
        WheelMember("quirky-1.0.data/purelib/dup.py", b"FROM = 'data'\n"),
        WheelMember("dup.py", b"FROM = 'root'\n"),
        WheelMember("quirky/tool.sh", b"#!/bin/sh\n", 0o700),
    ], name="quirky", entry_points="[console_scripts]\nquirky = quirky:main\n"
                                   "[gui_scripts]\nquirky-gui = quirky:main\n")
    fake_wheel(house, [
        WheelMember("Renamed.Dist-2.0.data/scripts/renamed-tool", b"#!python\nx\n", 0o755),
        WheelMember("renamed_dist/__init__.py", b""),
    ], name="Renamed.Dist", version="2.0", filename="renamed_dist-2.0-py3-none-any.whl")
    ours, theirs = tmp_path / "ours" / "python", tmp_path / "pip" / "python"
    ours.mkdir(parents=True)
    install_wheels([(w, "0" * 64) for w in sorted(house.glob("*.whl"))], python_dir=ours,
                   minor=MINOR)
    pip_install(house, theirs, ["quirky==1.0", "renamed-dist==2.0"])
    mine, pips = normalised_tree(ours), normalised_tree(theirs)
    assert sorted(set(mine) ^ set(pips)) == []
    assert {p for p in mine if mine[p] != pips[p]} == set()
    assert (ours / "bin/crlf-tool").read_bytes().endswith(b"\nprint(1)\r\n")
    assert (ours / f"include/python{MINOR}/quirky/quirky.h").is_file()
