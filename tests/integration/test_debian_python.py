"""Debian's own x86_64 CPython (``/usr/bin/python3.11``, distribution-patched) as a bundle's
interpreter: issue point 2 for native imports.

The interpreter comes from pinned amd64 ``.deb`` files unpacked into a tree (tests/debroot.py),
imported with ``builder runtime import /usr --sysroot TREE`` (its frozen ``site`` reads
dist-packages, its stdlib is EXTERNALLY-MANAGED, it has no pip). jupyterlab-4 is built with it
and served in a Debian root whose own python3 (with numpy, without ipykernel) becomes a kernel:
the launcher installs ipykernel from the bundle's wheelhouse with the pip the import added.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from builder_run import run_builder
from debroot import ensure_debroot
from rootfs import IMAGE_WITH_NUMPY, can_isolate, ensure_rootfs
from test_build import extract
from test_launch import TOKEN, IsolatedRoot, Jupyter, free_port, service_def_command, stop
from test_vscode import give

pytestmark = pytest.mark.integration

NAME = "jupyterlab-4"


@pytest.fixture(scope="module")
def amd64_debs(builder_cache: Path) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (apt-get install dpkg)")
    return ensure_debroot("amd64", cache_dir=builder_cache)


@pytest.fixture(scope="module")
def debian_runtime(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
                   amd64_debs: Path) -> tuple[Path, str]:
    """The imported archive and what the importer said on stderr."""
    out = tmp_path_factory.mktemp("debian-runtime")
    proc = run_builder("runtime", "import", "/usr", "--sysroot", str(amd64_debs), "--out",
                       str(out), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.splitlines()[0]), proc.stderr


def test_debians_python_is_recognised_and_fixed_with_nothing_of_the_host_in_the_archive(
        amd64_debs: Path, debian_runtime: tuple[Path, str]) -> None:
    archive, said = debian_runtime
    assert "dist-packages -> site-packages" in said, said
    assert "EXTERNALLY-MANAGED dropped" in said and "pip 23.3.2 (pinned) added" in said, said
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        member = tar.extractfile("python/PYTHON.json")
        assert member is not None
        meta = json.loads(member.read())
    assert meta["target_triple"] == "x86_64-unknown-linux-gnu"
    assert meta["python_version"] == "3.11.2"
    assert {"python/lib/python3.11/dist-packages", "python/lib/python3.11/site-packages/pip",
            "python/bin/python3.11"} <= names
    assert "python/lib/python3.11/EXTERNALLY-MANAGED" not in names
    vendored = {v["name"]: v["host_path"] for v in meta["builder_import"]["vendored_libraries"]}
    assert {"libssl.so.3", "libffi.so.8", "libsqlite3.so.0", "libexpat.so.1"} <= set(vendored)
    assert all(p.startswith(("/usr/lib/x86_64-linux-gnu/", "/lib/x86_64-linux-gnu/"))
               for p in vendored.values()), vendored
    # the tree's place on this host appears in no member
    assert str(amd64_debs).encode() not in gzip.decompress(archive.read_bytes())


@pytest.mark.slow
def test_jupyterlab_4_on_debians_python_installs_the_images_kernel_with_the_added_pip(
        debian_runtime: tuple[Path, str], builder_cache: Path, tmp_path: Path) -> None:
    reason = can_isolate()
    if reason:
        pytest.skip(reason)
    proc = run_builder("build", f"recipes/{NAME}.toml", "--python-from", str(debian_runtime[0]),
                       "--out", str(tmp_path / "dist"), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr[-6000:]
    bundle = extract(Path(proc.stdout.strip()), tmp_path / "bundle")
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path / "bundle")], check=True)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["interpreter"]["origin"] == "imported"
    root = ensure_rootfs("bookworm", include=IMAGE_WITH_NUMPY)  # Debian's python3, no ipykernel
    with IsolatedRoot(root=root, apps={NAME: bundle}, scratch=tmp_path / "mnt") as iso:
        home = "/tmp/home"
        give(iso, home)
        port = free_port()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
               "JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1"}
        started = iso.start(service_def_command(bundle, port), env, log=tmp_path / "serve.log",
                            cwd=home)
        client = Jupyter(port, "/")  # / redirects to /lab
        try:
            client.wait_ready(deadline=120, alive=started.alive)
            specs = client.kernelspecs()["kernelspecs"]
            assert set(specs) == {"python3", "bundle-python3"}, specs
            # the bundle's kernel: Debian's 3.11.2, its packages found through dist-packages
            out = client.run("import sys, jupyterlab; print(sys.version.split()[0], "
                             "jupyterlab.__file__)", kernel="bundle-python3", deadline=120)
            assert out == ("3.11.2 /opt/apps/jupyterlab-4/python/lib/python3.11/"
                           "dist-packages/jupyterlab/__init__.py\n"), out
            # the image's python3: ipykernel installed at its first start by the bundle's pip
            out = client.run("import sys, numpy; print(6*7, sys.executable)", deadline=300)
            assert out == "42 /usr/bin/python3\n", out
            assert "installing ipykernel for /usr/bin/python3" in started.output()
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log ---\n{started.output()[-5000:]}") from exc
        finally:
            stop(started.proc)
