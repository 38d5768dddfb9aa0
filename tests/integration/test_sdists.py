"""Source distributions end to end through the CLI: a local PEP 503 index (written by the test)
serves a pure and a native sdist plus a real setuptools wheel from PyPI; `builder lock` pins
them, `builder build` makes their wheels offline, reproducibly, and refuses a native one for
another architecture."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from builder_run import PBS_RELEASE, run_builder
from test_build import extract, minimal_env

from builder.lock.codec import seal

pytestmark = pytest.mark.integration

SETUPTOOLS = "setuptools==80.9.0"
X86, ARM = "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"

PURE = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
                      'build-backend = "setuptools.build_meta"\n\n'
                      '[project]\nname = "demo"\nversion = "1.0"\n'
                      '[project.scripts]\ndemo = "demo:main"\n',
    "demo.py": 'def main():\n    print("demo from source")\n',
}
NATIVE = {
    # no pyproject.toml: PEP 517's setuptools fallback
    "setup.py": "from setuptools import Extension, setup\n"
                "setup(name='nativedemo', version='1.0',\n"
                "      ext_modules=[Extension('nativedemo', ['nativedemo.c'])])\n",
    "nativedemo.c": '#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT,'
                    ' "nativedemo", NULL, -1, NULL};\n'
                    'PyMODINIT_FUNC PyInit_nativedemo(void) { return PyModule_Create(&m); }\n',
}


def write_sdist(path: Path, top: str, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))


def add_project(index: Path, name: str, files: list[Path]) -> None:
    folder = index / name
    folder.mkdir(parents=True, exist_ok=True)
    links = "".join(
        f'<a href="{f.name}#sha256={hashlib.sha256(f.read_bytes()).hexdigest()}">{f.name}</a>\n'
        for f in files)
    for f in files:
        if f.parent != folder:
            shutil.copy(f, folder / f.name)
    (folder / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path) -> Path:
    """A project folder: recipes/demo.toml over a file:// index with two sdists."""
    root = tmp_path_factory.mktemp("sdist-project")
    index = root / "simple"
    wheels = builder_cache / "test-index-wheels"
    wheels.mkdir(exist_ok=True)
    if not list(wheels.glob("setuptools-80.9.0-*.whl")):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--no-deps",
                        "--only-binary=:all:", "--index-url=https://pypi.org/simple",
                        "-d", str(wheels), SETUPTOOLS], check=True, capture_output=True,
                       env={**env, "PIP_CONFIG_FILE": os.devnull})
    add_project(index, "setuptools", sorted(wheels.glob("setuptools-80.9.0-*.whl")))
    for name, files in (("demo", PURE), ("nativedemo", NATIVE)):
        (index / name).mkdir(parents=True)
        write_sdist(index / name / f"{name}-1.0.tar.gz", f"{name}-1.0", files)
        add_project(index, name, [index / name / f"{name}-1.0.tar.gz"])
    (root / "recipes").mkdir()
    (root / "recipes" / "demo.toml").write_text(f"""\
format_version = 1
[app]
name = "demo"
version = "1.0"
[runtime]
python = "3.11"
pbs_release = "{PBS_RELEASE}"
[packages]
requirements = ["demo==1.0", "nativedemo==1.0"]
index_url = "{index.as_uri()}"
allow_sdists = ["demo", "nativedemo"]
[targets]
triples = ["{ARM}", "{X86}"]
""")
    lock = run_builder("lock", "recipes/demo.toml", cache=builder_cache, cwd=root)
    assert lock.returncode == 0, lock.stderr
    return root


def test_lock_pins_sdists_and_their_build_dependencies(project: Path) -> None:
    data = json.loads((project / "lockfiles/demo/lock.json").read_text())
    sdists = data["sdists"]
    assert sorted(sdists) == ["demo-1.0.tar.gz", "nativedemo-1.0.tar.gz"]
    assert sdists["demo-1.0.tar.gz"]["backend"] == "setuptools.build_meta"
    assert sdists["nativedemo-1.0.tar.gz"]["backend"] == "setuptools.build_meta:__legacy__"
    for entry in sdists.values():
        assert sorted(entry["build_deps"]) == ["aarch64", "x86_64"]
        assert [d["filename"] for d in entry["build_deps"]["x86_64"]] == \
            ["setuptools-80.9.0-py3-none-any.whl"]
        assert entry["url"].startswith("file://") and len(entry["sha256"]) == 64
    txt = (project / f"lockfiles/demo/{X86}.txt").read_text()
    assert "demo==1.0 \\\n    --hash=sha256:" + sdists["demo-1.0.tar.gz"]["sha256"] in txt


def test_not_allowing_them_says_so(project: Path, builder_cache: Path, tmp_path: Path) -> None:
    shutil.copytree(project / "recipes", tmp_path / "recipes")
    recipe = tmp_path / "recipes" / "demo.toml"
    recipe.write_text(recipe.read_text().replace('allow_sdists = ["demo", "nativedemo"]',
                                                 'allow_sdists = ["nativedemo"]'))
    proc = run_builder("lock", "recipes/demo.toml", cache=builder_cache, cwd=tmp_path)
    assert proc.returncode == 1
    assert "demo 1.0 is published only as a source distribution (demo-1.0.tar.gz)" in proc.stderr
    assert 'packages.allow_sdists = ["demo"]' in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "lockfiles").exists()


def build(project: Path, cache: Path, out: Path, runtime: Path, *extra: str,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_builder("build", "recipes/demo.toml", "--out", str(out), *extra,
                       *(("--python-from", str(runtime)) if runtime.name else ()),
                       cache=cache, cwd=project, env=env)


def test_build_makes_the_wheels_offline_and_reproducibly(
        project: Path, builder_cache: Path, runtime_archive: Path, tmp_path: Path) -> None:
    first = build(project, builder_cache, tmp_path / "one", runtime_archive)
    assert first.returncode == 0, first.stderr
    bundle = Path(first.stdout.strip())
    manifest = json.loads(bundle.with_name(bundle.name.replace(".tar.zst", ".json")).read_text())
    lock = json.loads((project / "lockfiles/demo/lock.json").read_text())
    by_name = {p["name"]: p for p in manifest["packages"]}
    assert by_name["demo"]["wheel"] == "demo-1.0-py3-none-any.whl"
    assert by_name["demo"]["built_from"] == {
        "sdist": "demo-1.0.tar.gz", "sha256": lock["sdists"]["demo-1.0.tar.gz"]["sha256"]}
    assert by_name["nativedemo"]["wheel"].startswith("nativedemo-1.0-cp311-cp311-linux_x86_64")
    sbom = json.loads(bundle.with_name(bundle.name.replace(".tar.zst", ".cdx.json")).read_text())
    demo = next(c for c in sbom["components"] if c.get("name") == "demo")
    assert demo["hashes"][0]["content"] == by_name["demo"]["sha256"]
    assert demo["pedigree"]["ancestors"][0]["hashes"][0]["content"] == \
        lock["sdists"]["demo-1.0.tar.gz"]["sha256"]

    app = extract(bundle, tmp_path / "x") / "app"
    run = subprocess.run([str(app / "bin/demo")], env=minimal_env(), capture_output=True,
                         text=True, check=False)
    assert (run.returncode, run.stdout) == (0, "demo from source\n"), run.stderr
    native = subprocess.run([str(app / "python/bin/python3"), "-I", "-c",
                             "import nativedemo; print(nativedemo.__file__)"],
                            env=minimal_env(), capture_output=True, text=True, check=False)
    assert native.returncode == 0, native.stderr

    # a fresh cache (the wheels are built again from the sdists) and another umask: same bytes
    fresh = tmp_path / "fresh-cache"
    shutil.copytree(builder_cache / "imported", fresh / "imported")
    old = os.umask(0o077)
    try:
        second = build(project, fresh, tmp_path / "two", runtime_archive)
    finally:
        os.umask(old)
    assert second.returncode == 0, second.stderr
    assert "built demo-1.0-py3-none-any.whl from demo-1.0.tar.gz" in second.stderr
    assert Path(second.stdout.strip()).read_bytes() == bundle.read_bytes()


def test_a_native_sdist_is_refused_for_another_architecture(
        project: Path, builder_cache: Path, runtime_archive: Path, tmp_path: Path) -> None:
    """The aarch64 target, its interpreter served by a mirror directory (the imported x86_64
    archive stands in for it: the refusal comes before anything runs it)."""
    first = build(project, builder_cache, tmp_path / "x86", runtime_archive)
    assert first.returncode == 0, first.stderr  # the wheels are in the cache now
    lock_path = project / "lockfiles/demo/lock.json"
    saved = lock_path.read_text()
    data = json.loads(saved)
    pin = data["targets"][ARM]["interpreter"]
    pin["sha256"] = hashlib.sha256(runtime_archive.read_bytes()).hexdigest()
    mirror = tmp_path / "mirror"
    (mirror / PBS_RELEASE).mkdir(parents=True)
    shutil.copy(runtime_archive, mirror / PBS_RELEASE / pin["filename"])
    try:
        lock_path.write_text(json.dumps(seal(data)))  # a deliberate edit
        proc = build(project, builder_cache, tmp_path / "arm", Path(""), "--target", ARM,
                     env={"BUILDER_PBS_MIRROR": str(mirror)})
    finally:
        lock_path.write_text(saved)
    assert proc.returncode == 1
    assert ("nativedemo 1.0 is built from source and its wheel "
            "(nativedemo-1.0-cp311-cp311-linux_x86_64.whl) holds native code: it can be built "
            f"only for this machine's architecture (x86_64), not {ARM}") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "arm").glob("*")) if (tmp_path / "arm").exists() else True
