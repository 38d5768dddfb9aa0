"""The agent installing from a real registry: the tiny bundle built, `builder push`ed to
Debian's docker-registry on loopback, `builder agent install oci://...@sha256:...` (concurrent
agents pull once), the ImageVolume mount of it, and the installed app runs.

Needs the Debian package docker-registry (skipped without it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builder_run import run_builder

from builder.agent import Store, entry_problems

pytestmark = pytest.mark.integration

CONCURRENT = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
         runtime_archive: Path) -> Path:
    out = tmp_path_factory.mktemp("dist-tiny")
    proc = run_builder("build", "recipes/tiny.toml", "--python-from", str(runtime_archive),
                       "--out", str(out), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def tagged(pinned: str) -> str:
    """oci://REGISTRY/tiny:1.0 for REGISTRY/tiny@sha256:..."""
    return f"oci://{pinned.partition('@')[0]}:1.0"


@pytest.fixture(scope="module")
def pinned(docker_registry: str, tiny: Path, builder_cache: Path) -> str:
    """`builder push` of the tiny bundle to REGISTRY/tiny:1.0: the REPO@sha256:... it prints."""
    proc = run_builder("push", str(tiny), f"{docker_registry}/tiny:1.0", "--plain-http",
                       cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    ref = proc.stdout.strip()
    assert ref.startswith(f"{docker_registry}/tiny@sha256:"), ref
    return ref


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder", "agent", *args], capture_output=True,
                          text=True, check=False, timeout=300)


def test_install_by_digest_mount_as_image_volume_and_run(pinned: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = agent("install", f"oci://{pinned}", "--plain-http", "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    digest = pinned.rsplit("@sha256:", 1)[1]
    entry = store / "entries" / digest
    assert result["fresh"] is True and result["path"] == str(entry)
    assert result["name"] == "tiny" and result["oci_reference"] == pinned

    mounts = agent("mounts", "tiny", "--store", str(store), "--format", "k8s",
                   "--image-volume")
    assert mounts.returncode == 0, mounts.stderr
    fragment = json.loads(mounts.stdout)
    assert fragment["volumes"][0] == {
        "name": "builder-tiny-app",
        "image": {"reference": pinned, "pullPolicy": "IfNotPresent"}}
    assert fragment["volumeMounts"][0] == {
        "name": "builder-tiny-app", "mountPath": "/opt/apps/tiny", "readOnly": True}

    joke = subprocess.run([str(entry / "app" / "bin" / "pyjoke")], capture_output=True,
                          text=True, check=False, timeout=60, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert joke.returncode == 0, joke.stderr
    assert joke.stdout.strip()

    record = Store(root=store).resolve("tiny")
    assert entry_problems(record, entry) == []
    assert agent("verify", "tiny", "--store", str(store)).returncode == 0
    # tag + --sha256 names the same manifest: the same entry, reused
    again = agent("install", tagged(pinned), "--sha256", digest,
                  "--plain-http", "--store", str(store), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["fresh"] is False


def test_the_image_gives_the_tree_of_the_archive(pinned: str, tiny: Path,
                                                 tmp_path: Path) -> None:
    by_image = agent("install", f"oci://{pinned}", "--plain-http", "--store",
                     str(tmp_path / "a"))
    by_archive = agent("install", str(tiny), "--store", str(tmp_path / "b"))
    assert by_image.returncode == 0 and by_archive.returncode == 0, by_image.stderr
    assert tree(Path(by_image.stdout.strip())) == tree(Path(by_archive.stdout.strip()))


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.name == ".complete":
            continue
        content = str(path.readlink()).encode() if path.is_symlink() else \
            b"" if path.is_dir() else path.read_bytes()
        found[path.relative_to(root).as_posix()] = (path.lstat().st_mode, content)
    return found


def test_a_tag_alone_is_refused(pinned: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = agent("install", tagged(pinned), "--plain-http", "--store", str(store))
    assert proc.returncode == 1
    assert "no digest to check the image manifest against" in proc.stderr
    assert "oci://REGISTRY/REPO@sha256:" in proc.stderr
    assert not (store / "entries").exists() or not any((store / "entries").iterdir())
    wrong = agent("install", tagged(pinned), "--sha256", "0" * 64, "--plain-http", "--store",
                  str(store))
    assert wrong.returncode == 1 and "HTTP 404" in wrong.stderr  # no manifest has that digest
    assert not any((store / "entries").iterdir())


def test_concurrent_agents_pull_once(pinned: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    argv = [sys.executable, "-m", "builder", "agent", "install", f"oci://{pinned}",
            "--plain-http", "--store", str(store), "--json"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(CONCURRENT)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert sum(r["fresh"] for r in results) == 1
    assert len({r["path"] for r in results}) == 1
    assert list((store / "tmp").iterdir()) == []
