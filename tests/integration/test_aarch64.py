"""aarch64 bundles built on this (x86_64) machine, proven in an arm64 Debian root under qemu-user.

The interpreter is Debian's arm64 python3.11 from pinned ``.deb`` files unpacked with
``dpkg-deb -x`` (tests/debroot.py; no qemu, seconds), imported with ``builder runtime import /usr
--sysroot ROOT``: its libraries come from that tree, not from the host. tiny, jupyter-6 and
jupyterlab-4 are built for aarch64 with it (the build runs the aarch64 interpreter under qemu
with ``QEMU_LD_PREFIX`` = the same tree, which holds libc6), then run in the Python-less arm64
minbase root (``debootstrap --foreign`` unpacked, not configured: no qemu second stage;
cached; binfmt_misc runs every aarch64 program through qemu-aarch64-static, which ``./dev test``
installs and registers). On an aarch64 host the same tests run natively.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from builder_run import run_builder
from debroot import ensure_debroot
from rootfs import can_emulate, ensure_rootfs
from test_build import extract
from test_launch import TOKEN, IsolatedRoot, Jupyter, _uid, free_port, service_def_command

pytestmark = pytest.mark.integration

TARGET = "aarch64-unknown-linux-gnu"


@pytest.fixture(scope="module")
def arm64_root() -> Path:
    """The Python-less arm64 minbase root the bundles run in."""
    root = ensure_rootfs("bookworm", arch="arm64")
    assert not any((root / d / "python3").exists() for d in ("usr/bin", "usr/local/bin", "bin"))
    return root


@pytest.fixture(scope="module")
def arm64_debs(builder_cache: Path) -> Path:
    """Debian's arm64 python3.11 and the libraries it links (libc6 too), unpacked from pinned
    .deb files: the sysroot of the import and the QEMU_LD_PREFIX of the builds."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed (apt-get install dpkg)")
    return ensure_debroot("arm64", cache_dir=builder_cache)


@pytest.fixture(scope="module")
def arm64_runtime(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
                  arm64_debs: Path) -> Path:
    """Debian's arm64 CPython 3.11, imported from the unpacked .debs with --sysroot."""
    root = arm64_debs
    out = tmp_path_factory.mktemp("arm64-runtime")
    proc = run_builder("runtime", "import", "/usr", "--sysroot", str(root), "--out", str(out),
                       cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    assert "dist-packages -> site-packages" in proc.stderr, proc.stderr
    return Path(proc.stdout.splitlines()[0])


def _build(recipe: str, runtime: Path, out: Path, cache: Path) -> Path:
    """A build for aarch64: its interpreter runs under qemu with the C library of the .debs."""
    reason = can_emulate("arm64")
    if reason:
        pytest.skip(reason)
    qemu = {"QEMU_LD_PREFIX": str(ensure_debroot("arm64", cache_dir=cache))}
    proc = run_builder("build", f"recipes/{recipe}.toml", "--target", TARGET, "--python-from",
                       str(runtime), "--out", str(out), cache=cache, env=qemu)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return Path(proc.stdout.strip())


@pytest.fixture(scope="module")
def arm64_jupyter(tmp_path_factory: pytest.TempPathFactory, builder_cache: Path,
                  arm64_runtime: Path, jupyter_bundle: Path) -> Path:
    """jupyter-6 for aarch64. Its sdist (jupyter_contrib_nbextensions) is built into a pure
    wheel by an interpreter of this machine: the x86_64 bundle (``jupyter_bundle``) built with
    the same cache leaves that wheel there, as the hint of the cross build says to do."""
    assert jupyter_bundle.is_file()
    return _build("jupyter-6", arm64_runtime, tmp_path_factory.mktemp("dist-arm64"),
                  builder_cache)


def _bundle_dir(archive: Path, dest: Path) -> Path:
    root = extract(archive, dest)
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    return root


def test_import_from_an_arm64_root_takes_its_libraries_and_no_host_path(
        arm64_debs: Path, arm64_runtime: Path, builder_cache: Path, tmp_path: Path) -> None:
    root = arm64_debs
    with tarfile.open(arm64_runtime) as tar:
        member = tar.extractfile("python/PYTHON.json")
        assert member is not None
        meta = json.loads(member.read())
        names = tar.getnames()
    assert meta["target_triple"] == TARGET
    vendored = meta["builder_import"]["vendored_libraries"]
    assert {"libssl.so.3", "libffi.so.8", "libsqlite3.so.0"} <= {v["name"] for v in vendored}
    # paths inside the root (bookworm's .debs put some libraries in /lib: no merged /usr)
    assert all(v["host_path"].startswith(("/usr/lib/aarch64-linux-gnu/",
                                          "/lib/aarch64-linux-gnu/")) for v in vendored)
    assert "python/lib/python3.11/dist-packages" in names
    assert "python/lib/python3.11/EXTERNALLY-MANAGED" not in names
    # the same bytes when the root sits elsewhere: nothing of its host path is in the archive
    elsewhere = tmp_path / "elsewhere"
    elsewhere.symlink_to(root)
    proc = run_builder("runtime", "import", str(elsewhere / "usr"), "--sysroot", str(elsewhere),
                       "--out", str(tmp_path / "out"), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.splitlines()[0]).read_bytes() == arm64_runtime.read_bytes()


@pytest.mark.slow
def test_tiny_for_aarch64_runs_in_a_python_less_arm64_root(
        arm64_root: Path, arm64_runtime: Path, builder_cache: Path, tmp_path: Path) -> None:
    archive = _build("tiny", arm64_runtime, tmp_path / "dist", builder_cache)
    bundle = _bundle_dir(archive, tmp_path / "tiny")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["arch"] == "aarch64" and manifest["interpreter"]["origin"] == "imported"
    (bundle / "service-def.json").write_text("{}")  # tiny has no service; IsolatedRoot mounts one
    with IsolatedRoot(root=arm64_root, apps={"tiny": bundle}, scratch=tmp_path / "mnt") as iso:
        started = iso.start(["/opt/apps/tiny/bin/pyjoke"], {"LANG": "C.UTF-8"},
                            log=tmp_path / "pyjoke.log")
        assert started.proc.wait(timeout=120) == 0, started.output()
        assert started.output().strip(), "a joke"


def _dropped_debugpy_helpers(bundle: Path) -> None:
    """The x86_64 attach helpers of debugpy's "pure" wheel were dropped and listed."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["arch"] == "aarch64"
    dropped = {d["file"]: d["arch"] for d in manifest.get("dropped", [])}
    assert dropped and set(dropped.values()) == {"x86_64"}, manifest.get("dropped")
    assert all("/debugpy/" in f and not (bundle / f).exists() for f in dropped)


def _serve_and_compute(iso: IsolatedRoot, bundle: Path, log: Path) -> float:
    """The service definition's command as uid 1000: seconds to the first HTTP 200 (``/``
    and its redirects: /tree or /lab), then a kernel computing 6*7 on aarch64."""
    port = free_port()
    started = iso.start(service_def_command(bundle, port),
                        {"JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1"}, log=log)
    client = Jupyter(port, "/")
    try:
        seconds = client.wait_ready(deadline=240, alive=started.alive)
        assert _uid(started.proc.pid) == 1000
        assert client.run("import platform; print(6*7, platform.machine())",
                          deadline=240) == "42 aarch64\n"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- log ---\n{started.output()[-4000:]}") from exc
    return seconds


@pytest.mark.slow
def test_jupyter_6_for_aarch64_serves_in_a_python_less_arm64_root(
        arm64_root: Path, arm64_jupyter: Path, tmp_path: Path) -> None:
    bundle = _bundle_dir(arm64_jupyter, tmp_path / "jupyter-6")
    _dropped_debugpy_helpers(bundle)
    apps = {"jupyter-6": bundle}
    with IsolatedRoot(root=arm64_root, apps=apps, scratch=tmp_path / "mnt") as iso:
        version = iso.start(["/opt/apps/jupyter-6/bin/jupyter-notebook", "--version"],
                            {"LANG": "C.UTF-8"}, log=tmp_path / "version.log")
        assert version.proc.wait(timeout=300) == 0, version.output()
        assert version.output().strip().splitlines()[-1] == "6.5.7"
        seconds = _serve_and_compute(iso, bundle, tmp_path / "serve.log")
        print(f"aarch64 jupyter-6: first HTTP 200 under qemu after {seconds:.1f} s")


@pytest.mark.slow
def test_jupyterlab_4_for_aarch64_serves_in_a_python_less_arm64_root(
        arm64_root: Path, arm64_runtime: Path, builder_cache: Path, tmp_path: Path) -> None:
    archive = _build("jupyterlab-4", arm64_runtime, tmp_path / "dist", builder_cache)
    bundle = _bundle_dir(archive, tmp_path / "jupyterlab-4")
    _dropped_debugpy_helpers(bundle)
    # the image-Python wheelhouse is the aarch64 one (ipykernel's deps for each listed CPython)
    wheels = [w.name for w in (bundle / "app/share/wheelhouse").rglob("*.whl")]
    assert any("aarch64" in w for w in wheels) and not any("x86_64" in w for w in wheels), wheels
    apps = {"jupyterlab-4": bundle}
    with IsolatedRoot(root=arm64_root, apps=apps, scratch=tmp_path / "mnt") as iso:
        seconds = _serve_and_compute(iso, bundle, tmp_path / "serve.log")
        print(f"aarch64 jupyterlab-4: first HTTP 200 under qemu after {seconds:.1f} s")


@pytest.mark.slow
def test_agent_check_knows_the_architecture(arm64_root: Path, arm64_jupyter: Path,
                                            builder_cache: Path) -> None:
    yes = run_builder("agent", "check", str(arm64_jupyter), "--rootfs", str(arm64_root),
                      "--json", cache=builder_cache)
    assert yes.returncode == 0 and json.loads(yes.stdout)["verdict"] == "compatible", yes.stdout
    amd64 = ensure_rootfs("bookworm")
    no = run_builder("agent", "check", str(arm64_jupyter), "--rootfs", str(amd64),
                     cache=builder_cache)
    assert no.returncode == 3, no.stdout + no.stderr
    assert "aarch64" in no.stdout and "x86_64" in no.stdout, no.stdout



def test_a_foreign_build_without_the_targets_c_library_says_what_to_do(
        arm64_runtime: Path, builder_cache: Path, tmp_path: Path) -> None:
    proc = run_builder("build", "recipes/tiny.toml", "--target", TARGET, "--python-from",
                       str(arm64_runtime), "--out", str(tmp_path / "dist"), cache=builder_cache,
                       env={"QEMU_LD_PREFIX": ""})
    assert proc.returncode == 1, proc.stderr
    assert "needs the aarch64 C library: QEMU_LD_PREFIX is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())
