"""The README's ``docker run`` commands, run 1:1 by a real container engine (Debian's podman).

The image is a debootstrap minbase root (no Python, no Node.js) imported into a podman store of
the tests' own; the commands are read from README.md, so the README says what is tested. Only
this host's needs are added (`podman_engine.HOST_FLAGS`: ``--runtime runc`` and two
``--ulimit``), plus a container name and a free loopback port on the host side of ``-p``.

- jupyter-6 and jupyterlab-4 (the README's Launching command, the bundle's name in place of
  jupyter-6): HTTP 200, a kernel computes 6*7 as uid 1000 with the bundle's Python, in a
  read-only root with the app mounted read-only.
- vscode (the README's VS Code command): code-server's ``/healthz`` and ``/`` answer 200 on the
  port the bundle's manifest names.
- The OCI path: ``builder push`` to a loopback registry, ``podman pull`` of that digest, and the
  same command with ``--mount type=image,...`` at /opt/apps/jupyter-6 instead of ``-v``: what a
  Kubernetes ImageVolume gives a pod.

Skipped (with podman's error) only where podman cannot start a container at all.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from builder_run import ROOT, run_builder
from podman_engine import (
    HOST_FLAGS,
    DockerRun,
    Podman,
    ReadmeCommandError,
    Started,
    minbase_image,
    readme_docker_run,
)
from rootfs import ensure_rootfs
from servers import free_port
from test_build import extract
from test_launch import Jupyter, _uid

pytestmark = [pytest.mark.integration, pytest.mark.slow]

README = ROOT / "README.md"
DOCUMENTED = "jupyter-6"  # the bundle the README's Launching command names; any other likewise
READY_SECONDS = 180.0  # a bounded wait for the first 200 (two cores shared by many jobs)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """podman with a store of this module's own, removed afterwards."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: apt-get install -y podman runc)")
    engine = Podman(store=tmp_path_factory.mktemp("podman"))
    try:
        yield engine
    finally:
        engine.destroy()


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The cached bookworm minbase root as an image (no Python, no Node.js in it)."""
    root = ensure_rootfs("bookworm")
    for program in ("python3", "python", "node"):
        for directory in ("usr/bin", "usr/local/bin", "bin"):
            assert not (root / directory / program).exists(), f"the root has {program}"
    started = time.monotonic()
    tag = minbase_image(podman, root)
    print(f"minbase image imported in {time.monotonic() - started:.1f} s")
    probe = podman.run("run", "--rm", *HOST_FLAGS, tag, "/bin/true", timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot start containers on this machine: {probe.stderr[-800:]}")
    return tag


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where bundles are extracted as <name>/ (the README's ``$PWD``)."""
    return tmp_path_factory.mktemp("apps")


def extracted(workdir: Path, name: str, archive: Path) -> Path:
    """``archive`` extracted to ``workdir/name`` (manifest.json, service-def.json, app/),
    readable by uid 1000."""
    target = workdir / name
    if not target.exists():
        extract(archive, target)
        subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    return target


def manifest_port(bundle: Path) -> int:
    """The port the bundle serves on by default, from its manifest."""
    return int(json.loads((bundle / "manifest.json").read_text())["service"]["port"])


def documented(app: str, bundle: Path) -> DockerRun:
    """The README's command for ``app``; it publishes the port the bundle's manifest names."""
    command = readme_docker_run(README, app)
    port = manifest_port(bundle)
    if command.container_port != port:
        raise ReadmeCommandError(
            f"README.md's docker run for {app} publishes container port "
            f"{command.container_port}, but the bundle serves on {port}: fix README.md")
    return command


# --- containers, always removed -------------------------------------------------------------------


@contextlib.contextmanager
def container(podman: Podman, words: list[str], log: Path) -> Iterator[Started]:
    """``podman run ...`` in the foreground; ``podman rm -f`` and the client stopped at exit."""
    started = podman.start(words, log=log)
    try:
        yield started
    finally:
        podman.remove(started.name)
        podman.containers.remove(started.name)
        try:
            started.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(started.proc.pid, signal.SIGKILL)
            started.proc.wait(timeout=30)


def run_documented(podman: Podman, image: str, command: DockerRun, cwd: Path, log: Path,
                   app_mount: tuple[str, str] | None = None
                   ) -> contextlib.AbstractContextManager[Started]:
    port = free_port()
    words = command.for_podman(image=image, host_port=port, name=f"builder-test-"
                               f"{uuid.uuid4().hex[:12]}", cwd=cwd, app_mount=app_mount)
    log.write_text("")
    return container(podman, words, log)


def host_port(started: Started) -> int:
    """The free loopback port the harness put on the host side of ``-p``."""
    words = started.proc.args
    assert isinstance(words, list)
    published = words[words.index("-p") + 1]
    return int(published.split(":")[1])


def container_pid(podman: Podman, started: Started) -> int:
    return int(podman.check("inspect", "--format", "{{.State.Pid}}", started.name).strip())


# --- what the user sees -------------------------------------------------------------------------


# the kernel's answer: 6*7, its uid, its Python, whether the app mount and the root are read-only
# (statvfs: a --mount type=image overlay is read-only in its superblock, not its mount flags)
KERNEL_CODE = """
import os, sys
ro = [bool(os.statvfs(p).f_flag & os.ST_RDONLY) for p in ("/opt/apps/NAME", "/")]
print(6 * 7, os.getuid(), sys.prefix, *ro)
"""


def check_jupyter(started: Started, command: DockerRun, name: str) -> None:
    """HTTP 200 at the base URL, a kernel computes 42 as uid 1000 with the bundle's Python in a
    read-only root, the app read-only; only the bundle's kernel is offered (no image Python)."""
    env = dict(v.split("=", 1) for v in command.values("-e", "--env"))
    if "JUPYTER_TOKEN" not in env:
        raise ReadmeCommandError(f"README.md's docker run for {name} sets no JUPYTER_TOKEN")
    client = Jupyter(host_port(started), "/", token=env["JUPYTER_TOKEN"])
    try:
        seconds = client.wait_ready(deadline=READY_SECONDS, alive=started.alive)
        print(f"{name}: HTTP 200 after {seconds:.1f} s")
        assert set(client.kernelspecs()["kernelspecs"]) == {"python3"}
        answer = client.run(KERNEL_CODE.replace("NAME", name)).split()
    except AssertionError as exc:
        raise AssertionError(f"{name}: {exc}\n--- podman run ---\n{started.output()[-4000:]}"
                             ) from exc
    assert answer == ["42", "1000", f"/opt/apps/{name}/python", "True", "True"]


def get(port: int, path: str, *, follow: int = 5) -> tuple[int, bytes]:
    """GET http://127.0.0.1:port/path, following up to ``follow`` redirects."""
    target = path
    for _ in range(follow + 1):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
            status, location, body = resp.status, resp.getheader("Location"), resp.read()
        finally:
            conn.close()
        if status not in (301, 302, 303, 307, 308) or not location:
            return status, body
        target = urllib.parse.urljoin(f"http://127.0.0.1:{port}{target}", location)
        target = target.split(f"127.0.0.1:{port}", 1)[-1] or "/"
    return status, body


def wait_for_200(port: int, path: str, started: Started) -> float:
    begin = time.monotonic()
    while time.monotonic() - begin < READY_SECONDS:
        if not started.alive():
            raise AssertionError(f"the container exited:\n{started.output()[-4000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(port, path, follow=0)[0] == 200:
                return time.monotonic() - begin
        time.sleep(0.3)
    raise AssertionError(f"no 200 at {path} within {READY_SECONDS} s:\n"
                         f"{started.output()[-4000:]}")


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jupyter-6", "jupyterlab-4"])
def test_readme_docker_run_serves_jupyter_in_podman(podman: Podman, image: str, workdir: Path,
                                                    name: str, request: pytest.FixtureRequest,
                                                    tmp_path: Path) -> None:
    archive = request.getfixturevalue("jupyter_bundle" if name == "jupyter-6" else "lab_bundle")
    bundle = extracted(workdir, name, archive)
    command = documented(DOCUMENTED, bundle).renamed(DOCUMENTED, name)
    with run_documented(podman, image, command, workdir, tmp_path / "podman.log") as started:
        check_jupyter(started, command, name)
        assert _uid(container_pid(podman, started)) == 1000


def test_readme_docker_run_serves_code_server_in_podman(podman: Podman, image: str,
                                                        workdir: Path, vscode_bundle: Path,
                                                        tmp_path: Path) -> None:
    bundle = extracted(workdir, "vscode", vscode_bundle)
    command = documented("vscode", bundle)
    with run_documented(podman, image, command, workdir, tmp_path / "podman.log") as started:
        port = host_port(started)
        seconds = wait_for_200(port, "/healthz", started)
        print(f"vscode: /healthz 200 after {seconds:.1f} s")
        status, body = get(port, "/healthz")
        assert status == 200 and "status" in json.loads(body), body
        status, body = get(port, "/")
        assert status == 200 and b"<html" in body.lower(), (status, body[:300])
        assert _uid(container_pid(podman, started)) == 1000


def test_pushed_image_mounts_at_opt_apps_like_an_image_volume(
        podman: Podman, image: str, workdir: Path, jupyter_bundle: Path, docker_registry: str,
        builder_cache: Path, tmp_path: Path) -> None:
    """``builder push``, ``podman pull`` by digest, the README's command with the image mounted
    (``--mount type=image``, read-only) at /opt/apps/jupyter-6 in place of the ``-v``."""
    bundle = extracted(workdir, DOCUMENTED, jupyter_bundle)
    version = json.loads((bundle / "manifest.json").read_text())["version"]
    pushed = run_builder("push", str(jupyter_bundle), f"{docker_registry}/apps/jupyter-6:"
                         f"{version}", "--plain-http", cache=builder_cache)
    assert pushed.returncode == 0, pushed.stderr
    pinned = pushed.stdout.strip()
    assert "@sha256:" in pinned, pinned
    podman.check("pull", "--quiet", "--tls-verify=false", pinned, timeout=600)
    command = documented(DOCUMENTED, bundle)
    mount = ("--mount", f"type=image,source={pinned},destination=/opt/apps/{DOCUMENTED}")
    with run_documented(podman, image, command, workdir, tmp_path / "podman.log",
                        app_mount=mount) as started:
        words = started.proc.args
        assert isinstance(words, list)
        assert not any(str(workdir) in word for word in words), "no host directory mounted"
        check_jupyter(started, command, DOCUMENTED)
