"""`builder push` to a real registry (Debian's docker-registry on loopback), read back with
skopeo and umoci, and `pull_bundle`; `builder export --oci` read by the same tools.

Needs the Debian packages docker-registry, skopeo and umoci (skipped without them).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from builder_run import run_builder

from builder.oci import pull_bundle

pytestmark = pytest.mark.integration

TOOLS = ("docker-registry", "skopeo", "umoci")


@pytest.fixture(scope="module")
def oci_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install -y "
                    "docker-registry skopeo umoci)")


@pytest.fixture(scope="module")
def registry(oci_tools: None, docker_registry: str) -> str:
    """A docker-registry on 127.0.0.1 (plain HTTP): host:port (conftest's docker_registry)."""
    return docker_registry


def _build(out: Path, cache: Path, runtime: Path) -> Path:
    proc = run_builder("build", "recipes/tiny.toml", "--python-from", str(runtime),
                       "--out", str(out), cache=cache)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


@pytest.fixture(scope="module")
def two_builds(oci_tools: None, tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
               runtime_archive: Path) -> tuple[Path, Path]:
    """recipes/tiny.toml built twice, into two output directories (no cache hit)."""
    return (_build(tmp_path_factory.mktemp("dist-a"), builder_cache, runtime_archive),
            _build(tmp_path_factory.mktemp("dist-b"), builder_cache, runtime_archive))


def tree_of(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Every entry below root: kind, permission bits, content or link target."""
    entries: dict[str, tuple[str, int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if stat.S_ISLNK(st.st_mode):
            entries[rel] = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            entries[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
        else:
            entries[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return entries


def extract(bundle: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-xf", str(bundle), "-C", str(dest)], check=True)
    return dest


def push(bundle: Path, ref: str, cache: Path) -> str:
    proc = run_builder("push", str(bundle), ref, "--plain-http", cache=cache)
    assert proc.returncode == 0, proc.stderr
    pinned = proc.stdout.strip()
    assert pinned.startswith(ref.rsplit(":", 1)[0] + "@sha256:"), pinned
    return pinned.rsplit("@", 1)[1]


def tool(*argv: str) -> bytes:
    proc = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout


def skopeo_umoci(source: str, work: Path) -> Path:
    """skopeo copies the image into a layout, umoci unpacks its root filesystem."""
    work.mkdir()
    layout = work / "layout"
    tool("skopeo", "copy", "--quiet", "--src-tls-verify=false", source, f"oci:{layout}:t")
    rootfs = work / "rootfs"
    tool("umoci", "raw", "unpack", "--image", f"{layout}:t", str(rootfs))
    return rootfs


def test_push_then_skopeo_and_umoci_give_the_app_tree(registry: str, two_builds: tuple[Path, Path],
                                                      builder_cache: Path,
                                                      tmp_path: Path) -> None:
    bundle = two_builds[0]
    digest = push(bundle, f"{registry}/apps/tiny:1.0", builder_cache)
    reference = extract(bundle, tmp_path / "bundle")
    rootfs = skopeo_umoci(f"docker://{registry}/apps/tiny:1.0", tmp_path / "skopeo")
    expected = tree_of(reference / "app")
    assert tree_of(rootfs) == expected
    assert "bin/pyjoke" in expected and expected["bin/pyjoke"][1] == 0o755

    raw = tool("skopeo", "inspect", "--tls-verify=false", "--raw",
               f"docker://{registry}/apps/tiny:1.0")
    annotations = json.loads(raw)["annotations"]
    assert annotations["io.builder.manifest"] == (reference / "manifest.json").read_text()
    assert annotations["org.opencontainers.image.title"] == "tiny"

    # the agent's side of it: pull_bundle rebuilds what the bundle extracts to
    pulled = pull_bundle(f"oci://{registry}/apps/tiny@{digest}", tmp_path / "entry",
                         plain_http=True)
    assert tree_of(pulled) == tree_of(reference)


def test_two_builds_push_the_same_manifest_digest(registry: str, two_builds: tuple[Path, Path],
                                                  builder_cache: Path) -> None:
    first = push(two_builds[0], f"{registry}/apps/tiny:a", builder_cache)
    second = push(two_builds[1], f"{registry}/apps/tiny:b", builder_cache)
    assert first == second
    inspect = tool("skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/apps/tiny:b")
    assert json.loads(inspect)["Digest"] == first


def test_export_oci_layout_is_read_by_umoci(oci_tools: None, two_builds: tuple[Path, Path],
                                           builder_cache: Path, tmp_path: Path) -> None:
    bundle = two_builds[1]
    layout = tmp_path / "layout"
    proc = run_builder("export", str(bundle), "--oci", str(layout), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{layout}:1.0"
    rootfs = skopeo_umoci(f"oci:{layout}:1.0", tmp_path / "copy")
    assert tree_of(rootfs) == tree_of(extract(bundle, tmp_path / "bundle") / "app")
