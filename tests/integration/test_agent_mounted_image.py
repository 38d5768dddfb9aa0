"""Mounted entries with real mounts: a kernel loop mount and squashfuse, installed through the
CLI from a sidecar that lists the image; hostile images refused before any mount; concurrent
installs mount once; gc unmounts and respects leases; a mount that went away comes back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_factories import Fabricated, make_bundle
from builder_run import run_builder
from image_factories import add_image, list_image

from builder.agent.mount import MountMethod, mount_source, this_node, unmount

pytestmark = pytest.mark.integration


def agent(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder", "agent", *args],
                          capture_output=True, text=True, check=False, timeout=timeout)


def need(method: MountMethod) -> None:
    if method not in this_node().methods():
        why = ("root, squashfs in the kernel and /dev/loop-control" if method is
               MountMethod.KERNEL else "/dev/fuse and squashfuse (apt-get install squashfuse)")
        pytest.skip(f"this machine cannot mount with {method}: it needs {why}")


def mounts_at(path: Path) -> int:
    real = os.path.realpath(path)
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return sum(1 for line in lines if line.split()[4] == real)


@pytest.fixture
def imaged(tmp_path: Path) -> Fabricated:
    bundle = make_bundle(tmp_path / "dist", extra_files=200)
    add_image(bundle, tmp_path / "mkfs")
    return bundle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "store"
    yield root
    for entry in sorted(root.glob("**/entries/*")):
        unmount(entry)  # a failed test leaves no mount behind


@pytest.mark.parametrize("method", [MountMethod.KERNEL, MountMethod.FUSE])
def test_install_mounts_the_image_and_everything_works_on_it(
        imaged: Fabricated, store: Path, method: MountMethod) -> None:
    need(method)
    done = agent("install", str(imaged.archive), "--store", str(store), "--mount", str(method),
                 "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    entry = Path(result["path"])
    image_sha = json.loads(imaged.sidecar.read_text())["image"]["sha256"]
    assert entry == store / "entries" / image_sha
    assert (result["image"], result["mounted_with"], result["fresh"]) == \
        ("squashfs", str(method), True)
    kind = mount_source(entry)
    assert kind == ("squashfs" if method is MountMethod.KERNEL else "fuse.squashfuse")
    assert not (store / "tmp").exists() or list((store / "tmp").iterdir()) == []
    # the app runs from the mount; the mount is read-only
    ran = subprocess.run([str(entry / "app" / "bin" / "run")], capture_output=True, text=True,
                         check=False)
    assert ran.returncode == 0, ran.stderr
    with pytest.raises(OSError):
        (entry / "app" / "new").write_text("x")
    # verify reads every file of the mount against the RECORD; list, check and mounts as usual
    assert agent("verify", "demo", "--store", str(store)).returncode == 0
    plan = json.loads(agent("mounts", "demo", "--store", str(store), "--format", "json").stdout)
    assert [m["source"] for m in plan["mounts"]] == [str(entry / "app"),
                                                     str(entry / "service-def.json")]
    listed = json.loads(agent("list", "--store", str(store), "--json").stdout)
    assert [e["sha256"] for e in listed] == [image_sha]
    # again: the same entry, one mount
    again = agent("install", str(imaged.archive), "--store", str(store), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["fresh"] is False
    assert mounts_at(entry) == 1
    # a lease keeps it through gc; without one gc unmounts it and removes the image
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert agent("lease", "demo", "--store", str(store), "--pid",
                     str(sleeper.pid)).returncode == 0
        kept = agent("gc", "--store", str(store), "--max-bytes", "0", "--json")
        assert kept.returncode == 3, kept.stderr  # over budget: the leased entry stays
        assert json.loads(kept.stdout)["protected"] == [image_sha]
        assert mounts_at(entry) == 1 and (store / "images" / f"{image_sha}.squashfs").is_file()
    finally:
        sleeper.kill()
        sleeper.wait()
    gc = agent("gc", "--store", str(store), "--max-bytes", "0", "--json")
    assert gc.returncode == 0, gc.stderr
    assert mounts_at(entry) == 0 and not entry.exists()
    assert list((store / "images").iterdir()) == []


def test_extract_forces_the_archive(imaged: Fabricated, store: Path) -> None:
    done = agent("install", str(imaged.archive), "--store", str(store), "--extract", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["sha256"] == imaged.sha256 and result["image"] is None
    assert mount_source(Path(result["path"])) is None


def test_a_mount_that_went_away_comes_back_and_a_damaged_image_is_installed_again(
        imaged: Fabricated, store: Path) -> None:
    need(MountMethod.KERNEL)
    first = agent("install", str(imaged.archive), "--store", str(store), "--json")
    assert first.returncode == 0, first.stderr
    entry = Path(json.loads(first.stdout)["path"])
    unmount(entry)  # what a reboot does
    gone = agent("mounts", "demo", "--store", str(store))
    assert gone.returncode == 1 and "the image of demo 1.0 is not mounted" in gone.stderr
    again = agent("install", str(imaged.archive), "--store", str(store))
    assert again.returncode == 0, again.stderr
    assert "mounting" in again.stderr and "again" in again.stderr
    assert mounts_at(entry) == 1 and (entry / "manifest.json").is_file()
    unmount(entry)
    image = store / "images" / f"{entry.name}.squashfs"
    data = bytearray(image.read_bytes())
    data[-5000] ^= 1
    image.write_bytes(bytes(data))
    repaired = agent("install", str(imaged.archive), "--store", str(store), "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert "is damaged (sha256 " in repaired.stderr and "installing it again" in repaired.stderr
    assert "repaired demo 1.0: the installed entry differed from its bundle in 1 way(s)" in (
        repaired.stderr)
    result = json.loads(repaired.stdout)
    assert result["fresh"] is False
    assert [d["path"] for d in result["repaired"]] == [f"images/{entry.name}.squashfs"]
    assert mounts_at(entry) == 1 and (entry / "manifest.json").is_file()
    assert image.read_bytes() == image_bytes(imaged)


def test_concurrent_installs_of_one_image_mount_once(imaged: Fabricated, store: Path) -> None:
    need(MountMethod.KERNEL)
    argv = [sys.executable, "-m", "builder", "agent", "install", str(imaged.archive),
            "--store", str(store), "--json"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _o, e in outs]
    results = [json.loads(o) for o, _e in outs]
    assert len({r["path"] for r in results}) == 1
    assert sum(r["fresh"] for r in results) == 1
    assert mounts_at(Path(results[0]["path"])) == 1


def lie(bundle: Fabricated, data: bytes) -> None:
    """Put ``data`` where the image is, and list it in the sidecar (sha256 and size right)."""
    listed = json.loads(bundle.sidecar.read_text())["image"]
    bundle.archive.with_name(listed["filename"]).write_bytes(data)
    list_image(bundle, {**listed, "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data)})


def image_bytes(bundle: Fabricated) -> bytes:
    listed = json.loads(bundle.sidecar.read_text())["image"]
    return bundle.archive.with_name(listed["filename"]).read_bytes()


@pytest.mark.parametrize(("spoil", "message"), [
    ("flip", "sha256 mismatch"),
    ("truncate-listed", "has 4096 bytes, the sidecar or catalog says"),
    ("truncate", "(truncated?)"),
    ("random", "not a squashfs image (no squashfs magic)"),
    ("empty-ish", "shorter than a superblock"),
])
def test_hostile_images_are_refused_before_any_mount(imaged: Fabricated, store: Path,
                                                     spoil: str, message: str) -> None:
    need(MountMethod.KERNEL)
    data = image_bytes(imaged)
    if spoil == "flip":  # the sidecar's sha256 no longer matches
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        imaged.archive.with_name(json.loads(imaged.sidecar.read_text())["image"]["filename"]
                                 ).write_bytes(bytes(flipped))
    elif spoil == "truncate-listed":  # the file is shorter than the sidecar says
        imaged.archive.with_name(json.loads(imaged.sidecar.read_text())["image"]["filename"]
                                 ).write_bytes(data[:4096])
    elif spoil == "truncate":  # truncated, and a sidecar vouching for the truncated bytes
        lie(imaged, data[:4096])
    elif spoil == "random":
        lie(imaged, os.urandom(65536))
    else:
        lie(imaged, b"hsqs")
    loops_before = subprocess.run(["losetup", "-a"], capture_output=True, text=True,
                                  check=False).stdout
    done = agent("install", str(imaged.archive), "--store", str(store))
    assert done.returncode == 1, done.stdout
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    entries = store / "entries"
    assert not entries.exists() or list(entries.iterdir()) == []
    assert list((store / "images").iterdir()) == []
    assert list((store / "tmp").iterdir()) == []
    loops_after = subprocess.run(["losetup", "-a"], capture_output=True, text=True,
                                 check=False).stdout
    assert str(store) not in loops_after and loops_before.count("\n") <= loops_after.count(
        "\n") + 1


def test_a_sound_image_of_another_tree_is_refused_after_mounting_and_unmounted(
        tmp_path: Path, store: Path) -> None:
    """A well-formed squashfs the sidecar vouches for, whose manifest is not the bundle's:
    refused, unmounted, nothing left."""
    need(MountMethod.KERNEL)
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "mkfs-own")
    other = make_bundle(tmp_path / "other", name="other")
    info = add_image(other, tmp_path / "mkfs")
    lie(bundle, other.archive.with_name(info.filename).read_bytes())
    done = agent("install", str(bundle.archive), "--store", str(store))
    assert done.returncode == 1
    assert "does not agree with the sidecar" in done.stderr, done.stderr
    assert list((store / "entries").iterdir()) == []
    assert list((store / "images").iterdir()) == []
    assert str(store) not in Path("/proc/self/mountinfo").read_text()


def test_build_writes_the_same_image_twice_and_the_agent_mounts_it(
        tmp_path: Path, runtime_archive: Path, builder_cache: Path, store: Path) -> None:
    """recipes/tiny.toml built twice with --image into two directories (the second first
    without, then --image on the up-to-date bundle): the same image bytes, listed in the
    sidecar with the tool's version; its entry verifies and its app runs from the mount."""
    if shutil.which("mksquashfs") is None:
        pytest.skip("mksquashfs not installed (apt-get install squashfs-tools)")
    images = []
    for out, first in ((tmp_path / "one", ["--image", "squashfs"]), (tmp_path / "two", [])):
        built = run_builder("build", "recipes/tiny.toml", "--python-from", str(runtime_archive),
                            "--out", str(out), *first, cache=builder_cache)
        assert built.returncode == 0, built.stderr[-3000:]
        if not first:
            assert not list(out.glob("*.squashfs"))
            again = run_builder("build", "recipes/tiny.toml", "--python-from",
                                str(runtime_archive), "--out", str(out), "--image", "squashfs",
                                cache=builder_cache)
            assert again.returncode == 0, again.stderr[-3000:]
            assert "up to date" in again.stderr
            built = again
        printed = built.stdout.split()
        assert printed[1].endswith(".squashfs")
        sidecar = json.loads(Path(printed[0]).with_suffix("").with_suffix(".json").read_text())
        image = Path(printed[1])
        assert sidecar["image"]["filename"] == image.name
        assert sidecar["image"]["tool"].startswith("mksquashfs 4.")
        assert sidecar["image"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
        images.append((sidecar["archive"]["sha256"], sidecar["image"]["sha256"]))
    assert images[0] == images[1]
    need(MountMethod.KERNEL)
    archive = next((tmp_path / "one").glob("*.tar.zst"))
    done = agent("install", str(archive), "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    entry = Path(json.loads(done.stdout)["path"])
    assert mount_source(entry) == "squashfs"
    assert agent("verify", "tiny", "--store", str(store)).returncode == 0
    ran = subprocess.run([str(entry / "app" / "bin" / "pyjoke")], capture_output=True,
                         text=True, check=False, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0 and ran.stdout.strip(), ran.stderr


def test_build_without_the_tool_is_a_clear_error(tmp_path: Path, runtime_archive: Path,
                                                 builder_cache: Path) -> None:
    built = run_builder("build", "recipes/tiny.toml", "--python-from", str(runtime_archive),
                        "--out", str(tmp_path / "out"), "--image", "squashfs",
                        cache=builder_cache, env={"PATH": "/nonexistent"})
    assert built.returncode == 1
    assert "--image squashfs needs mksquashfs, which is not installed" in built.stderr
    assert "Traceback" not in built.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").glob("*.tar.zst")) == []



def first_200(entry: Path, home: Path) -> None:
    """``bin/launch`` of the mounted entry (no Python on PATH) answers 200 within 120 s; the
    server is stopped after."""
    import http.client

    from servers import free_port

    port = free_port()
    home.mkdir()
    env = {"PATH": "/nonexistent", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(home),
           "JUPYTER_TOKEN": "image-test", "LAUNCH_IP": "127.0.0.1"}
    argv = [str(entry / "app" / "bin" / "launch"), "--port", str(port)]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr \
                else "exited"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/tree", headers={"Authorization": "token image-test"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        pytest.fail("no HTTP 200 from the mounted entry's bin/launch within 120 s")
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
def test_jupyter_from_a_mounted_image_answers_200(jupyter_bundle: Path, runtime_archive: Path,
                                                  builder_cache: Path, tmp_path: Path,
                                                  store: Path) -> None:
    """The real jupyter-6 bundle: `build --image` on the up-to-date bundle adds its image; a
    kernel loop mount and a squashfuse mount each serve the launcher's first 200; verify reads
    the mount; gc unmounts both."""
    if shutil.which("mksquashfs") is None:
        pytest.skip("mksquashfs not installed (apt-get install squashfs-tools)")
    # a copy of the session's dist directory: the image changes the sidecar, and the shared
    # bundle must stay as other tests expect it (without an image, installed by extraction)
    dist = tmp_path / "dist"
    dist.mkdir()
    for made in jupyter_bundle.parent.iterdir():
        if not made.is_file():
            continue
        if made == jupyter_bundle:
            os.link(made, dist / made.name)  # never rewritten in place: a link is enough
        else:
            shutil.copy2(made, dist / made.name)
    built = run_builder("build", "recipes/jupyter-6.toml", "--python-from",
                        str(runtime_archive), "--out", str(dist), "--image", "squashfs",
                        cache=builder_cache)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "up to date" in built.stderr
    assert "image" not in json.loads(jupyter_bundle.with_suffix("").with_suffix(".json")
                                     .read_text())
    imaged = dist / jupyter_bundle.name
    methods = [m for m in (MountMethod.KERNEL, MountMethod.FUSE) if m in this_node().methods()]
    if not methods:
        pytest.skip("this machine can mount no squashfs image (kernel or squashfuse)")
    for method in methods:
        done = agent("install", str(imaged), "--store", str(store / str(method)),
                     "--mount", str(method), "--json")
        assert done.returncode == 0, done.stderr
        entry = Path(json.loads(done.stdout)["path"])
        assert mount_source(entry) in ("squashfs", "fuse.squashfuse")
        first_200(entry, tmp_path / f"home-{method}")
        assert agent("verify", "jupyter-6", "--store", str(store / str(method))).returncode == 0
        assert agent("gc", "--store", str(store / str(method)), "--max-bytes",
                     "0").returncode == 0
        assert mounts_at(entry) == 0
