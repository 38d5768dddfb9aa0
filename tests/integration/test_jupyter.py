"""The issue's acceptance, as a new user would try it: the jupyter-6 bundle, built twice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from builder_run import ROOT
from test_build import builder, extract, minimal_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_notebook_6_runs_from_two_places(jupyter_bundle: Path, tmp_path: Path) -> None:
    for where in (tmp_path / "one", tmp_path / "two with space"):
        app = extract(jupyter_bundle, where) / "app"
        env = {**minimal_env(), "HOME": str(tmp_path / "home")}
        version = subprocess.run([str(app / "bin/jupyter-notebook"), "--version"], env=env,
                                 capture_output=True, text=True, check=False)
        assert version.returncode == 0, version.stderr
        assert version.stdout.strip() == "6.5.7"
        imports = subprocess.run(
            [str(app / "python/bin/python3"), "-c",
             "import notebook, ssl, sqlite3, ctypes, zmq, tornado; print(notebook.__version__)"],
            env=env, capture_output=True, text=True, check=False)
        assert imports.returncode == 0, imports.stderr
        assert imports.stdout.strip() == "6.5.7"


def test_manifest_records_floor_exemptions_and_packages(jupyter_bundle: Path,
                                                        builder_cache: Path) -> None:
    data = json.loads(builder("inspect", str(jupyter_bundle), "--json",
                              cache=builder_cache).stdout)
    assert ("notebook", "6.5.7") in {(p["name"], p["version"]) for p in data["packages"]}
    exempt = {e["file"] for e in data["glibc_exempt"]}
    assert any("pydevd_attach_to_process" in f for f in exempt)
    assert "pydevd_attach_to_process" not in (data["glibc_floor_file"] or "")
    assert data["service"]["command"][0] == "bin/jupyter-notebook"


def test_second_build_elsewhere_is_identical_and_third_is_a_cache_hit(
    jupyter_bundle: Path, builder_cache: Path, runtime_archive: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "recipes", clone / "recipes")
    shutil.copytree(ROOT / "lockfiles", clone / "lockfiles")
    out = tmp_path / "dist"
    old = os.umask(0o027)
    try:
        second = builder("build", "recipes/jupyter-6.toml", "--python-from",
                         str(runtime_archive), "--out", str(out), cache=builder_cache, cwd=clone)
    finally:
        os.umask(old)
    assert second.returncode == 0, second.stderr
    rebuilt = Path(second.stdout.strip())
    assert rebuilt.name == jupyter_bundle.name
    assert rebuilt.read_bytes() == jupyter_bundle.read_bytes()
    third = builder("build", "recipes/jupyter-6.toml", "--python-from", str(runtime_archive),
                    "--out", str(out), cache=builder_cache, cwd=clone)
    assert third.returncode == 0
    assert "up to date" in third.stderr
    assert Path(third.stdout.strip()) == rebuilt
