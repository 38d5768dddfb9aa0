"""s6-overlay and Kubeflow (issue 12): the bundles' s6 service under Debian's real s6.

Each test is a container of its own: private mount, PID and network namespaces (``unshare -m
-p -n``), whose root is a read-only overlay of the cached ``debootstrap --variant=minbase``
bookworm root with Debian's s6 (s6-svscan, s6-supervise, s6-setuidgid) and an "image layer"
made before any bundle exists: the two links the README tells an image to make
(``/etc/cont-init.d/<name>`` to the bundle's cont-init script, ``/etc/services.d/<name>`` to
``/run/builder/services.d/<name>``), Kubeflow's user ``jovyan`` (uid 1000, gid 100) and its
home, where a tmpfs stands in for the notebook's volume. ``/tmp`` and ``/run`` are tmpfs, the
root has its own ``/proc`` and devpts; the bundle's ``app/`` is mounted read-only at
``/opt/apps/<name>`` afterwards, like a volume.

The container's first process runs s6-overlay's stage 2 in its order (``STAGE2``, written
here from s6-overlay's documented behaviour, not copied from it): every ``/etc/cont-init.d``
script, then each ``/etc/services.d`` entry copied to ``/run/s6/legacy-services`` the way
s6-overlay's ``s6-hiercopy`` copies it (a link stays a link: ``cp -PR``) and linked into the
scan directory, then ``s6-svscan`` as PID 1 (as in s6-overlay v3) with the environment
Kubeflow's notebook controller gives a notebook (``NB_PREFIX``, the image's ``NB_USER``).
Nothing listens outside the container's own network namespace, so the service keeps
Kubeflow's port 8888 and its default address; the test reaches it from inside that namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rootfs import can_isolate, ensure_rootfs
from test_build import extract

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT = 8888  # Kubeflow's notebook port; the s6 run script's default for every bundle
PREFIX = "/notebook/kubeflow-user-example-com/my-notebook/"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
COPIES = "/run/builder/services.d"  # scripts.S6_COPIES
# s6-overlay's stage 2, in its order (v2 init-stage2; v3 legacy-cont-init then services-up)
STAGE2 = """
for script in /etc/cont-init.d/*; do
    [ -e "$script" ] || continue
    "$script"
    echo "[stage2] cont-init $script exited $?"
done
mkdir -p /run/s6/legacy-services /run/service
for service in /etc/services.d/*; do
    [ -d "$service" ] || continue
    name=${service##*/}
    cp -PR "$service" "/run/s6/legacy-services/$name"
    ln -s "/run/s6/legacy-services/$name" "/run/service/$name"
done
echo "[stage2] services: $(ls /run/service)"
exec s6-svscan /run/service
"""
PROBE = """
import json, sys, urllib.error, urllib.request
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args): return None
opener = urllib.request.build_opener(Keep)
try:
    answer = opener.open(sys.argv[1], timeout=5)
except urllib.error.HTTPError as error:
    answer = error
except OSError as error:
    print(json.dumps({"status": 0, "error": str(error)})); sys.exit(0)
print(json.dumps({"status": answer.status, "headers": dict(answer.headers),
                  "body": answer.read(4096).decode("utf-8", "replace")}))
"""


# --- a container: namespaces, a read-only image, s6-svscan as PID 1 ---------------------------


def image_layer(layer: Path, root: Path, name: str, *, old_readme_link: bool = False) -> None:
    """The image's own files, made before the bundle exists: the two links (dangling here),
    Kubeflow's jovyan, mount points. ``old_readme_link``: the README's former advice instead,
    ``/etc/services.d/<name>`` linked straight into the bundle."""
    final = f"/opt/apps/{name}"
    (layer / "etc/cont-init.d").mkdir(parents=True)
    (layer / "etc/services.d").mkdir()
    if old_readme_link:
        (layer / "etc/services.d" / name).symlink_to(f"{final}/share/s6/services.d/{name}")
    else:
        (layer / "etc/cont-init.d" / name).symlink_to(f"{final}/share/s6/cont-init.d/{name}")
        (layer / "etc/services.d" / name).symlink_to(f"{COPIES}/{name}")
    passwd = (root / "etc/passwd").read_text()
    (layer / "etc/passwd").write_text(passwd + "jovyan:x:1000:100::/home/jovyan:/bin/bash\n")
    (layer / "etc/group").write_text((root / "etc/group").read_text())
    (layer / "home/jovyan").mkdir(parents=True)
    (layer / "opt/apps" / name).mkdir(parents=True)


@dataclass
class Container:
    holder: subprocess.Popen[bytes]
    log: Path
    mount: Path
    name: str

    @property
    def init(self) -> int:
        """The container's PID 1 (s6-svscan once stage 2 is done), as the host sees it."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _ppid(entry.name) == self.holder.pid:
                return int(entry.name)
        raise AssertionError(f"the container is gone:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def inside(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """``docker exec``: ``argv`` in the container's namespaces and root, as root."""
        return subprocess.run(["nsenter", "-t", str(self.init), "-m", "-p", "-n", "-r", "-w",
                               "--", *argv], capture_output=True, text=True, check=False,
                              timeout=timeout, env={"PATH": PATH})

    def get(self, path: str) -> dict[str, object]:
        """HTTP GET http://127.0.0.1:8888<path> from the container's network namespace (the
        host's Python; redirects are not followed)."""
        proc = subprocess.run(["nsenter", "-t", str(self.init), "-n", "--", sys.executable,
                               "-I", "-c", PROBE, f"http://127.0.0.1:{PORT}{path}"],
                              capture_output=True, text=True, check=False, timeout=30)
        assert proc.returncode == 0, proc.stderr
        answer: dict[str, object] = json.loads(proc.stdout)
        return answer

    def supervised(self) -> int | None:
        """The PID (host's view) of the service's process: the child of its s6-supervise."""
        supervisor = next((p for p in _tree(self.init) if _cmdline(p)[:1] == ["s6-supervise"]
                           and _cmdline(p)[1:] == [self.name]), None)
        if supervisor is None:
            return None
        return next((p for p in _tree(self.init) if _ppid(str(p)) == supervisor), None)

    def svstat(self) -> str:
        return self.inside("s6-svstat", f"/run/service/{self.name}").stdout.strip()


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.path.basename(a) if i == 0 else a
            for i, a in enumerate(raw.decode(errors="replace").split("\0")[:-1])]


def _tree(pid: int) -> set[int]:
    parents = {int(e.name): _ppid(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.fixture
def container(s6_root: Path, tmp_path: Path) -> Iterator[object]:
    """A factory: ``container(name, app, env, old_readme_link=False, user="0:0")`` starts
    one (``user``: whom s6-overlay runs as, root or the image's ``USER``; ``/run`` is theirs);
    all are killed (their PID 1, then everything in their PID namespace) at teardown."""
    started: list[Container] = []

    def start(name: str, app: Path, env: dict[str, str], *, old_readme_link: bool = False,
              user: str = "0:0") -> Container:
        scratch = tmp_path / f"c{len(started)}"
        layer, mount = scratch / "layer", scratch / "root"
        image_layer(layer, s6_root, name, old_readme_link=old_readme_link)
        mount.mkdir()
        q = shlex.quote
        log = scratch / "container.log"
        log.touch()  # the container's shell writes it once set up: never missing for a reader
        uid, gid = user.split(":")
        variables = " ".join(q(f"{k}={v}") for k, v in sorted({"PATH": PATH, **env}.items()))
        script = "\n".join([
            "set -eu", f"M={q(str(mount))}",
            f'mount -t overlay overlay -o lowerdir={q(str(layer))}:{q(str(s6_root))} "$M"',
            'mount -t proc proc "$M/proc"',
            'mount -t tmpfs -o mode=1777,size=256m tmpfs "$M/tmp"',
            f'mount -t tmpfs -o mode=755,uid={uid},gid={gid},size=16m tmpfs "$M/run"',
            'mount -t tmpfs -o mode=755,size=8m tmpfs "$M/dev"',
            *(f'touch "$M/dev/{d}" && mount --bind /dev/{d} "$M/dev/{d}"'
              for d in ("null", "zero", "random", "urandom", "tty")),
            'mkdir "$M/dev/pts" "$M/dev/shm"',
            'mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$M/dev/pts"',
            'ln -s pts/ptmx "$M/dev/ptmx"',
            'mount -t tmpfs -o mode=1777,size=64m tmpfs "$M/dev/shm"',
            'mount -o remount,ro "$M/dev"',
            'mount -t tmpfs -o mode=700,uid=1000,gid=100,size=256m tmpfs "$M/home/jovyan"',
            f'mount --bind {q(str(app))} "$M/opt/apps/{name}"',
            f'mount -o remount,bind,ro "$M/opt/apps/{name}"',
            "ip link set lo up", "echo ready",
            f"exec > {q(str(log))} 2>&1",
            f'exec chroot --userspec={user} "$M" /usr/bin/env -i {variables} /bin/sh -c '
            f"{q(STAGE2)}"])
        with (scratch / "setup.log").open("wb") as errors:
            holder = subprocess.Popen(
                ["unshare", "-m", "-p", "-n", "--propagation", "private", "--kill-child", "--",
                 "/bin/sh", "-c", script],
                stdout=subprocess.PIPE, stderr=errors, start_new_session=True)
        box = Container(holder=holder, log=log, mount=mount, name=name)
        started.append(box)
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != b"ready":
            raise AssertionError(f"setting up the container failed: "
                                 f"{(scratch / 'setup.log').read_text()}")
        return box

    yield start
    for box in reversed(started):
        if box.holder.poll() is None:
            with contextlib.suppress(AssertionError, ProcessLookupError):
                os.kill(box.init, signal.SIGKILL)  # PID 1: the kernel ends its namespace
            box.holder.kill()  # and --kill-child would do it too
        box.holder.wait(timeout=30)
        if box.holder.stdout is not None:
            box.holder.stdout.close()


def wait_for(what: str, check: object, box: Container, deadline: float = 120) -> object:
    """Poll ``check()`` (bounded) until it returns something true; that value."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {deadline} s\n--- container log ---\n"
                         f"{box.output()[-5000:]}\n--- s6-svstat ---\n{box.svstat()}")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s6_root() -> Path:
    """The cached minbase root with Debian's s6 (made once, a minute or two)."""
    if can_isolate():
        pytest.skip(can_isolate() or "")
    root = ensure_rootfs("bookworm", include=("s6",))
    for program in ("s6-svscan", "s6-supervise", "s6-setuidgid", "s6-svstat"):
        assert (root / "usr/bin" / program).is_file(), program
    return root


BUNDLES = {"jupyter-6": "jupyter_bundle", "vscode": "vscode_bundle"}  # conftest's fixtures


@pytest.fixture(scope="module")
def extracted() -> dict[str, Path]:
    return {}


def app_of(name: str, request: pytest.FixtureRequest, extracted: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle's app/, extracted once per module, readable by everyone (only the bundles a
    test asks for are built)."""
    if name not in extracted:
        archive = request.getfixturevalue(BUNDLES[name])
        root = extract(archive, tmp_path_factory.mktemp(name) / "bundle")
        subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
        extracted[name] = root / "app"
    return extracted[name]


@pytest.fixture
def app(request: pytest.FixtureRequest, extracted: dict[str, Path],
        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app/ of the bundle named by the test's ``name`` parameter."""
    return app_of(request.getfixturevalue("name"), request, extracted, tmp_path_factory)


KUBEFLOW_ENV = {"NB_PREFIX": PREFIX.rstrip("/"), "NB_USER": "jovyan", "HOME": "/root",
                "LANG": "C.UTF-8"}


def serving(box: Container, name: str) -> bool:
    """The app answers on 8888 the way Kubeflow reaches it."""
    if name == "vscode":  # Kubeflow's rewrite (http-rewrite-uri: /) takes NB_PREFIX away
        return box.get("/healthz")["status"] == 200
    return box.get(f"{PREFIX}api/status")["status"] == 200


# --- the acceptance ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "user"), [("jupyter-6", "0:0"), ("vscode", "0:0"),
                                            ("vscode", "1000:100")])
def test_s6_runs_the_bundle_kubeflow_style_and_restarts_it(container: object, app: Path,
                                                           name: str, user: str) -> None:
    """Up as jovyan on 8888 under NB_PREFIX from the links alone; restarted after kill -9.
    s6-overlay as root switches to $NB_USER; Kubeflow's own images run it as jovyan (USER)."""
    start = time.monotonic()
    env = KUBEFLOW_ENV if user == "0:0" else {**KUBEFLOW_ENV, "HOME": "/home/jovyan"}
    box: Container = container(name, app, env, user=user)  # type: ignore[operator]
    wait_for("serving on 8888", lambda: serving(box, name), box)
    up = time.monotonic() - start
    out = box.output()
    assert f"{name}: s6 service directory {COPIES}/{name}" in out, out
    first = box.supervised()
    assert first is not None and _uid(first) == 1000, "runs as $NB_USER (jovyan)"
    home = Path(f"/proc/{box.init}/root/home/jovyan")
    if name == "vscode":
        assert box.get(f"{PREFIX}healthz")["status"] == 404, "served at /, the proxy rewrites"
        root = box.get("/")
        location = str(root["headers"].get("Location", ""))  # type: ignore[union-attr]
        assert root["status"] == 302 and not location.startswith("/"), \
            f"a relative redirect stays under NB_PREFIX behind the rewrite: {root}"
        assert (home / ".local/share/code-server").is_dir(), "state in jovyan's home"
        assert f"$NB_PREFIX is {PREFIX.rstrip('/')}: code-server serves at /" in out
    else:
        status = json.loads(str(box.get(f"{PREFIX}api/status")["body"]))
        assert "started" in status, status
        assert box.get("/api/status")["status"] == 404, "served under NB_PREFIX only"
        assert (home / ".jupyter").stat().st_uid == 1000, "state in jovyan's home"
    assert re.search(r"^up \(pid \d+", box.svstat()), box.svstat()

    os.kill(first, signal.SIGKILL)
    killed = time.monotonic()
    wait_for("a new process", lambda: box.supervised() not in (None, first), box)
    wait_for("serving again", lambda: serving(box, name), box)
    assert f"{name}: stopped (exit code 256, signal 9)" in box.output()
    again = box.supervised()
    assert again is not None and _uid(again) == 1000
    print(f"\n{name}: serving {up:.1f} s after the container started, again "
          f"{time.monotonic() - killed:.1f} s after kill -9")


@pytest.mark.parametrize(("name", "env", "message"), [
    ("jupyter-6", {"LAUNCH_PORT": "notaport"}, "$LAUNCH_PORT 'notaport' is not a TCP port"),
    ("jupyter-6", {"NB_PREFIX": "/notebook/ns/my notebook"},
     "$NB_PREFIX '/notebook/ns/my notebook' is not a URL path"),
    ("vscode", {"LAUNCH_PORT": "notaport"}, "$LAUNCH_PORT 'notaport' is not a TCP port"),
    ("vscode", {"LAUNCH_IP": "0.0.0.0:8888"},
     "$LAUNCH_IP '0.0.0.0:8888' is not an IP address or host name"),
])
def test_a_refused_configuration_exits_78_and_is_not_restarted(
        container: object, app: Path, name: str, env: dict[str, str], message: str) -> None:
    box: Container = container(name, app, {**KUBEFLOW_ENV, **env})  # type: ignore[operator]
    wait_for("stopped with 78", lambda: "stopped (exit code 78, signal" in box.output(), box)
    time.sleep(3)  # s6-supervise restarts a service a second after it stops
    out = box.output()
    assert out.count(f"{name}: stopped (exit code") == 1, f"restarted:\n{out}"
    assert message in out, out
    assert box.supervised() is None
    status = box.svstat()
    assert status.startswith("down (exitcode 78)"), status


@pytest.mark.parametrize("name", ["jupyter-6"])
def test_the_old_readme_link_cannot_start(container: object, app: Path, name: str) -> None:
    """Why the cont-init script exists: /etc/services.d/<name> linked into the read-only bundle
    is copied as a link, and s6-supervise cannot write its control files there."""
    box: Container = container(name, app, KUBEFLOW_ENV,  # type: ignore[operator]
                               old_readme_link=True)
    wait_for("s6-supervise's complaint", lambda: "Read-only file system" in box.output(), box,
             deadline=30)
    assert box.supervised() is None
    assert box.get(f"{PREFIX}api/status")["status"] == 0, "nothing serves"
