"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from builder_run import ROOT, run_builder
from servers import Mirror, pyenv_prefix, serve_mirror, serve_registry


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with serve_mirror(tmp_path) as served:
        yield served


@pytest.fixture(scope="module")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (plain HTTP) for one test module; yields
    ``host:port``; stopped at teardown. Skipped without it (apt-get install docker-registry)."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry not installed (Debian: apt-get install -y docker-registry)")
    with serve_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture(scope="session", autouse=True)
def no_mount_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the run, whatever a failed test left mounted below pytest's temporary
    directory (an image mounted by `agent install`, a bind mount) is unmounted (lazily), so the
    directory can be removed and no loop device or squashfuse daemon outlives the run."""
    yield
    base = os.path.realpath(tmp_path_factory.getbasetemp())
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    points = [line.split()[4].replace("\\040", " ") for line in lines if len(line.split()) > 4]
    for point in sorted((p for p in points if p.startswith(base + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False, timeout=60)




@pytest.fixture(scope="session")
def builder_cache() -> Path:
    """A cache kept between runs (wheels, imported runtimes), like a user's ~/.cache/builder."""
    path = ROOT / ".cache" / "test-builder"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def runtime_archive(builder_cache: Path) -> Path:
    """pyenv's CPython 3.11.7 as a PBS-layout archive (made once, by `builder runtime import`)."""
    from builder.fetch.interpreter import interpreter_from

    prefix = pyenv_prefix("3.11.7")
    if prefix is None or not (prefix / "bin" / "python3.11").exists():
        pytest.skip("pyenv CPython 3.11.7 is not installed")
    return interpreter_from(prefix, cache_dir=builder_cache).archive


@pytest.fixture(scope="session")
def jupyter_bundle(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
                   runtime_archive: Path) -> Path:
    """recipes/jupyter-6.toml built once per session with the imported 3.11.7."""
    out = tmp_path_factory.mktemp("dist-jupyter")
    proc = run_builder("build", "recipes/jupyter-6.toml", "--python-from", str(runtime_archive),
                       "--out", str(out), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


@pytest.fixture(scope="session")
def lab_bundle(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
               runtime_archive: Path) -> Path:
    """recipes/jupyterlab-4.toml built once per session with the imported 3.11.7."""
    out = tmp_path_factory.mktemp("dist-lab")
    proc = run_builder("build", "recipes/jupyterlab-4.toml", "--python-from",
                       str(runtime_archive), "--out", str(out), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def missing_node_build_tools() -> list[str]:
    """What building recipes/vscode.toml needs on this machine besides builder: make for
    node-gyp, dpkg-deb to unpack the Kerberos headers the lock pins."""
    return [t for t in ("make", "dpkg-deb") if shutil.which(t) is None]


@pytest.fixture(scope="session")
def vscode_bundle(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
                  runtime_archive: Path) -> Path:
    """recipes/vscode.toml built once per session with the imported 3.11.7 (npm's and zig's
    caches live in the builder cache: the first run downloads ~200 MB and builds zig's libc++;
    later runs take about two minutes)."""
    if os.uname().machine != "x86_64":
        pytest.skip("recipes/vscode.toml builds for x86_64 only")
    missing = missing_node_build_tools()
    if missing:
        pytest.skip(f"building code-server's native modules needs {', '.join(missing)}")
    out = tmp_path_factory.mktemp("dist-vscode")
    proc = run_builder("build", "recipes/vscode.toml", "--python-from", str(runtime_archive),
                       "--out", str(out), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return Path(proc.stdout.strip())
