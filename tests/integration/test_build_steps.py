"""[build] steps end to end: recipes built by the CLI whose steps write into the app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import tomlkit
import zstandard
from builder_run import ROOT, run_builder

from builder.sandbox import network_isolation

pytestmark = pytest.mark.integration

WRITE_DATA = ["python3", "-c", (
    "import json, pathlib, sys; from importlib.metadata import version; "
    "p = pathlib.Path('share/steps'); p.mkdir(parents=True); "
    "(p / 'x.json').write_text(json.dumps({'python': sys.version.split()[0], "
    "'pyjokes': version('pyjokes')}, sort_keys=True))")]


def recipe(directory: Path, steps: list[list[str]], *, base: str = "tiny") -> Path:
    """recipes/<base>.toml with a [build] table, in ``directory`` (its lock is unchanged: steps
    are not a lock input)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{base}.toml"
    document = tomlkit.parse((ROOT / "recipes" / f"{base}.toml").read_text())
    document["build"] = {"steps": steps}  # replaces the recipe's own [build], if it has one
    path.write_text(tomlkit.dumps(document))
    if not (directory / "icons").exists():  # app.ui.icon is a path relative to the recipe
        shutil.copytree(ROOT / "recipes" / "icons", directory / "icons")
    return path


def build(path: Path, out: Path, *, cache: Path, python: Path, base: str = "tiny",
          cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_builder("build", str(path), "--lock-dir", str(ROOT / "lockfiles" / base),
                       "--python-from", str(python), "--out", str(out), cache=cache, cwd=cwd)


def members(archive: Path) -> dict[str, bytes | None]:
    """Every member of a bundle: name -> bytes (None for directories and links)."""
    with archive.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream, \
            tarfile.open(fileobj=stream, mode="r|") as tar:
        found: dict[str, bytes | None] = {}
        for member in tar:
            data = tar.extractfile(member) if member.isfile() else None
            found[member.name] = data.read() if data is not None else None
        return found


def empty(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_what_a_step_writes_is_in_the_bundle_and_rebuilds_identically(
        tmp_path: Path, builder_cache: Path, runtime_archive: Path) -> None:
    built = []
    for name, umask in (("one", 0o022), ("other place", 0o077)):
        old = os.umask(umask)
        try:
            proc = build(recipe(tmp_path / name / "recipes", [WRITE_DATA]), tmp_path / name / "out",
                         cache=builder_cache, python=runtime_archive, cwd=tmp_path / name)
        finally:
            os.umask(old)
        assert proc.returncode == 0, proc.stderr
        assert "build step 1 (python3 -c import json" in proc.stderr
        assert "1 file written (second run" in proc.stderr
        built.append(Path(proc.stdout.strip()))
    assert built[0].name == built[1].name
    assert built[0].read_bytes() == built[1].read_bytes()
    data = members(built[0])["app/share/steps/x.json"]
    assert data is not None
    assert json.loads(data) == {"pyjokes": "0.8.3", "python": "3.11.7"}


def test_a_step_has_no_network(tmp_path: Path, builder_cache: Path,
                               runtime_archive: Path) -> None:
    if network_isolation() is None:
        pytest.skip("no network namespace can be made here (unshare)")
    out = tmp_path / "out"
    proc = build(recipe(tmp_path, [["python3", "-c", "import socket; "
                                    "socket.create_connection(('pypi.org', 443), 5)"]]),
                 out, cache=builder_cache, python=runtime_archive)
    assert proc.returncode == 1, proc.stderr
    assert "build.steps[0]: build step 1 failed (exit code 1): python3 -c import socket" \
        in proc.stderr
    assert "  | socket.gaierror" in proc.stderr or "  | OSError" in proc.stderr, proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr.split("  | ")[0]
    assert empty(out)


def test_a_failing_step_prints_its_tail_and_leaves_out_empty(
        tmp_path: Path, builder_cache: Path, runtime_archive: Path) -> None:
    out = tmp_path / "out"
    path = recipe(tmp_path, [WRITE_DATA, ["sh", "-c", "echo preparing; echo 'no such thing' >&2; "
                                          "exit 7"]])
    proc = build(path, out, cache=builder_cache, python=runtime_archive)
    assert proc.returncode == 1
    assert proc.stderr.endswith(
        f"error: {path}: build.steps[1]: build step 2 failed (exit code 7): sh -c echo preparing;"
        " echo 'no such thing' >&2; exit 7\n  | preparing\n  | no such thing\n  hint: the step "
        "runs in the app root with the bundle's python/bin first on PATH, a private HOME, no "
        "network and no host pip configuration; reproduce it there\n")
    assert empty(out)


def test_a_step_writing_the_staging_path_fails_naming_the_step(
        tmp_path: Path, builder_cache: Path, runtime_archive: Path) -> None:
    out = tmp_path / "out"
    proc = build(recipe(tmp_path, [WRITE_DATA, ["python3", "-c", "import json, sys; "
                                                "json.dump({'prefix': sys.prefix}, "
                                                "open('share/steps/paths.json', 'w'))"]]),
                 out, cache=builder_cache, python=runtime_archive)
    assert proc.returncode == 1
    assert "1 file still contains the staging path (" in proc.stderr
    assert ("  share/steps/paths.json (written by build step 2 (python3 -c import json, sys; "
            "json.dump({'prefix': sys.prefix}, open('share/st...))") in proc.stderr
    assert "hint: a build step wrote the path the app has during the build" in proc.stderr
    assert empty(out)


def test_a_non_reproducible_step_fails_the_build(tmp_path: Path, builder_cache: Path,
                                                 runtime_archive: Path) -> None:
    out = tmp_path / "out"
    proc = build(recipe(tmp_path, [["python3", "-c", "import time; "
                                    "open('python/stamp', 'w').write(str(time.time_ns()))"]]),
                 out, cache=builder_cache, python=runtime_archive)
    assert proc.returncode == 1
    assert "build step 1 (python3 -c import time; open('python/stamp', 'w').write(str(time.tim" \
           "e_ns()))) is not reproducible: run again in a copy of the app at another path, it " \
           "left 1 file different:\n  python/stamp: line 1, column " in proc.stderr
    assert "hint: a step must write the same bytes every time" in proc.stderr
    assert empty(out)


JUPYTER_STEPS = [
    ["python3", "-c", "import pathlib; p = pathlib.Path('share/demo-ext'); p.mkdir(parents=True);"
     " (p / 'main.js').write_text('define([], function () { return {load_ipython_extension: "
     "function () {}}; });\\n')"],
    ["jupyter", "nbextension", "install", "--sys-prefix", "share/demo-ext"],
    ["jupyter", "nbextension", "enable", "--sys-prefix", "demo-ext/main"],
]


@pytest.mark.slow
def test_jupyter_nbextension_steps_write_the_sys_prefix(tmp_path: Path, builder_cache: Path,
                                                        runtime_archive: Path) -> None:
    """Notebook 6's own tools install and enable an nbextension into app/python/share/jupyter
    and app/python/etc/jupyter, twice from two places, with the same bytes."""
    built = []
    for name in ("a", "bb"):
        path = recipe(tmp_path / name, JUPYTER_STEPS, base="jupyter-6")
        proc = build(path, tmp_path / name / "out", cache=builder_cache, python=runtime_archive,
                     base="jupyter-6")
        assert proc.returncode == 0, proc.stderr[-3000:]
        built.append(Path(proc.stdout.strip()))
    print(proc.stderr)  # the steps' times, for the record (pytest -s)
    assert built[0].read_bytes() == built[1].read_bytes()
    files = members(built[0])
    assert files["app/python/share/jupyter/nbextensions/demo-ext/main.js"]
    config = files["app/python/etc/jupyter/nbconfig/notebook.json"]
    assert config is not None
    assert json.loads(config) == {"load_extensions": {"demo-ext/main": True}}
