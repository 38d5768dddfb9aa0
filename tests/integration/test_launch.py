"""The launch layer's acceptance: bundles mounted read-only into a root with no Python at all.

A cached ``debootstrap --variant=minbase`` root is bind-mounted read-only at a scratch mount
point inside a private mount namespace (``unshare -m``), with each bundle's ``app/`` read-only at
``/opt/apps/<name>``, its ``service-def.json`` at ``/opt/kernel/service-defs/<name>.json``,
``/proc``, a tmpfs ``/tmp`` and the host's ``/dev``. Processes run there with ``chroot
--userspec=1000:1000`` in their own process group, with ``PYTHONPATH``, ``VIRTUAL_ENV``,
``LD_LIBRARY_PATH`` (and more) pointing at junk, and are always stopped afterwards.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rootfs import IMAGE_WITH_IPYKERNEL, ensure_rootfs
from test_build import extract

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "launch-test-token"
# The image's leaks, all pointing at junk made inside the root's tmpfs /tmp (see JUNK_SETUP)
JUNK_ENV = {
    "PATH": "/tmp/junk/bin:/usr/local/bin:/usr/bin:/bin",  # a broken python3 comes first
    "PYTHONPATH": "/tmp/junk/lib",  # a notebook / jupyter_server / jupyterlab that raise
    "PYTHONHOME": "/tmp/junk",
    "PYTHONUSERBASE": "/tmp/junk/userbase",
    "PYTHONSTARTUP": "/tmp/junk/startup.py",
    "VIRTUAL_ENV": "/tmp/junk/venv",
    "LD_LIBRARY_PATH": "/tmp/junk/so",  # a libstdc++.so.6 that is not a library
    "JUPYTER_PATH": "/tmp/junk/share/jupyter",
    "JUPYTER_CONFIG_PATH": "/tmp/junk/etc/jupyter",
    "LANG": "C.UTF-8",
}
# what no kernel of the bundle may see: the image's leaks and the launcher's own variables
INTERNALS = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP", "VIRTUAL_ENV",
             "LD_LIBRARY_PATH", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PLATFORM_DIRS",
             "XDG_CONFIG_DIRS", "XDG_DATA_DIRS", "BUILDER_LAUNCH_CHILD_ENV",
             "BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH")
JUNK_SETUP = """
mkdir -p "$M/tmp/junk/bin" "$M/tmp/junk/so" "$M/tmp/junk/etc/jupyter"
printf '#!/bin/sh\\necho "junk python3 $*" >&2\\nexit 3\\n' > "$M/tmp/junk/bin/python3"
chmod 755 "$M/tmp/junk/bin/python3"
for module in notebook jupyter_server jupyterlab nbclassic; do
    mkdir -p "$M/tmp/junk/lib/$module"
    echo 'raise ImportError("junk on PYTHONPATH")' > "$M/tmp/junk/lib/$module/__init__.py"
done
echo 'raise SystemExit("junk PYTHONSTARTUP")' > "$M/tmp/junk/startup.py"
echo 'not a library' > "$M/tmp/junk/so/libstdc++.so.6"
cd "$M/tmp/junk/etc/jupyter"
echo 'c.NotebookApp.port = 1; c.ServerApp.port = 1' > jupyter_notebook_config.py
cp jupyter_notebook_config.py jupyter_server_config.py
cd /
chmod -R a+rX "$M/tmp/junk"
"""


# --- a minimal Jupyter client: REST over http.client, kernel channels over a WebSocket ---------


class Jupyter:
    def __init__(self, port: int, base_url: str, token: str = TOKEN) -> None:
        self.port, self.base, self.token = port, base_url, token

    def request(self, method: str, path: str, body: Any = None,
                timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Authorization": f"token {self.token}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            target = path if path.startswith("/") else self.base + path
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get_following(self, path: str = "") -> int:
        """GET with redirects followed (the base URL redirects to /tree or /lab)."""
        status, target = 0, path
        for _ in range(5):
            status, headers, _body = self.request("GET", target, timeout=5)
            if status not in (301, 302, 303, 307, 308):
                return status
            target = headers.get("Location", "")
            if "://" in target:  # absolute: keep the path
                target = "/" + target.split("://", 1)[1].partition("/")[2]
        return status

    def wait_ready(self, deadline: float = 90, alive: Any = None) -> float:
        """Seconds until the base URL answers 200 (bounded; stops early if the server died)."""
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            if alive is not None and not alive():
                raise AssertionError("the server exited before answering")
            try:
                if self.get_following() == 200:
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no HTTP 200 at {self.base} within {deadline} s")

    def kernelspecs(self) -> dict[str, Any]:
        status, _h, body = self.request("GET", "api/kernelspecs")
        assert status == 200, body
        return dict(json.loads(body))

    def start_kernel(self, kernel: str = "python3") -> str:
        """POST a new kernel; its id (the server starts it and answers at once)."""
        status, _h, body = self.request("POST", "api/kernels", {"name": kernel})
        assert status == 201, (status, body)
        return str(json.loads(body)["id"])

    def execute(self, kernel_id: str, code: str, deadline: float = 90) -> str:
        """Execute ``code`` over the kernel's channels; the stream output (an error raises
        AssertionError with the traceback)."""
        with WebSocket(self.port, f"{self.base}api/kernels/{kernel_id}/channels",
                       self.token) as ws:
            return _execute(ws, code, deadline)

    def shutdown(self, kernel_id: str) -> None:
        self.request("DELETE", f"api/kernels/{kernel_id}")

    def run(self, code: str, kernel: str = "python3", deadline: float = 90) -> str:
        """Start a kernel through the REST API, execute ``code`` over its channels, return the
        stream output, shut the kernel down."""
        kernel_id = self.start_kernel(kernel)
        try:
            return self.execute(kernel_id, code, deadline)
        finally:
            self.shutdown(kernel_id)


def _execute(ws: WebSocket, code: str, deadline: float) -> str:
    msg_id = uuid.uuid4().hex
    ws.send_text(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    out: list[str] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        msg = json.loads(ws.recv_text(end - time.monotonic()))
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)
    raise AssertionError("no reply from the kernel")


class WebSocket:
    """RFC 6455, client side: the handshake, masked text frames out, frames in."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: token {token}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the WebSocket handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = bytes([0x80 | opcode, 0x80 | size])
        elif size < 1 << 16:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", size)
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", size)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the WebSocket was closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def recv_text(self, timeout: float) -> str:
        self.sock.settimeout(max(timeout, 0.1))
        message = b""
        while True:
            b0, b1 = self._read(2)
            size = b1 & 0x7F
            if size == 126:
                size = struct.unpack(">H", self._read(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("the server closed the WebSocket")
            elif opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


# --- processes we start, and only those, always stopped ---------------------------------------


def _parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return found


def descendants(pid: int) -> set[int]:
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process groups of ``proc`` and its descendants (kernels run in their own
    session), wait, then SIGKILL what is left. Only groups led by one of those processes."""
    pids = {proc.pid} | descendants(proc.pid)
    groups = set()
    for pid in pids:
        try:
            if os.getpgid(pid) in pids:
                groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                continue
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists()
                                                  for p in pids - {proc.pid}):
            time.sleep(0.1)
        if not any(Path(f"/proc/{p}").exists() for p in pids - {proc.pid}):
            return


@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class IsolatedRoot:
    """A private mount namespace holding a read-only root with read-only bundles in it."""

    root: Path
    apps: dict[str, Path]  # name -> extracted bundle (manifest.json, service-def.json, app/)
    scratch: Path
    # where each app/ is mounted (as <apps_dir>/<name>); another place checks relocatability.
    # Its first directory (e.g. /srv) must exist in the root and gets a small read-only tmpfs.
    apps_dir: str = "/opt/apps"
    holder: subprocess.Popen[bytes] | None = None
    started: list[Started] = field(default_factory=list)

    @property
    def mount(self) -> Path:
        return self.scratch / "root"

    def __enter__(self) -> IsolatedRoot:
        self.mount.mkdir(parents=True)
        q = shlex.quote
        assert self.apps_dir.startswith("/") and ".." not in self.apps_dir, self.apps_dir
        tops = sorted({"opt", self.apps_dir.strip("/").split("/")[0]})
        script = ["set -eu", f"M={q(str(self.mount))}",
                  f'mount --bind {q(str(self.root))} "$M"', 'mount -o remount,bind,ro "$M"',
                  'mount -t proc proc "$M/proc"',
                  'mount -t tmpfs -o mode=1777,size=1g tmpfs "$M/tmp"',
                  'mount --rbind /dev "$M/dev"',
                  *(f'mount -t tmpfs -o mode=755,size=1m tmpfs "$M/{top}"' for top in tops),
                  'mkdir -p "$M/opt/kernel/service-defs"']
        for name, bundle in self.apps.items():
            app = '"$M"' + q(f"{self.apps_dir.rstrip('/')}/{name}")
            sdef = f'"$M/opt/kernel/service-defs/{name}.json"'
            script += [f"mkdir -p {app}", f"mount --bind {q(str(bundle / 'app'))} {app}",
                       f"mount -o remount,bind,ro {app}", f": > {sdef}",
                       f"mount --bind {q(str(bundle / 'service-def.json'))} {sdef}",
                       f"mount -o remount,bind,ro {sdef}"]
        script += [*(f'mount -o remount,ro "$M/{top}"' for top in tops), JUNK_SETUP,
                   "echo ready", "exec sleep 3600"]
        errors = self.scratch / "holder.log"
        with errors.open("wb") as err:
            self.holder = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c",
                 "\n".join(script)],
                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            self._stop_holder()
            raise AssertionError(f"setting up the root failed: {errors.read_text()}")
        return self

    def start(self, argv: list[str], env: dict[str, str], *, log: Path,
              user: str = "1000:1000", cwd: str | None = None) -> Started:
        """Run ``argv`` in the root as ``user`` with exactly ``env``, in its own process group
        (in ``cwd`` inside the root, else in /)."""
        assert self.holder is not None
        chdir = ["--chdir", cwd] if cwd else []
        command = ["nsenter", "-t", str(self.holder.pid), "-m", "--",
                   "chroot", f"--userspec={user}", str(self.mount),
                   "/usr/bin/env", "-i", *chdir, *(f"{k}={v}" for k, v in sorted(env.items())),
                   *argv]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        started = Started(proc=proc, log=log)
        self.started.append(started)
        return started

    def __exit__(self, *exc: object) -> None:
        for started in reversed(self.started):
            stop(started.proc)
        self._stop_holder()

    def _stop_holder(self) -> None:
        if self.holder is None:
            return
        if self.holder.poll() is None:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(timeout=30)
        if self.holder.stdout is not None:
            self.holder.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_def_command(bundle: Path, port: int) -> list[str]:
    """The service definition's command, interpolated as Backend.AI does ({ports[0]})."""
    definition = json.loads((bundle / "service-def.json").read_text())
    return [part.format(ports=[port]) for part in definition["command"]]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, jupyter_bundle: Path,
         lab_bundle: Path) -> dict[str, Path]:
    found = {}
    for name, archive in (("jupyter-6", jupyter_bundle), ("jupyterlab-4", lab_bundle)):
        root = extract(archive, tmp_path_factory.mktemp(name) / "bundle")
        subprocess.run(["chmod", "-R", "a+rX", str(root.parent)], check=True)
        found[name] = root
    return found


@pytest.fixture(scope="module")
def python_less(apps: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[IsolatedRoot]:
    root = ensure_rootfs("bookworm")
    assert not any((root / d / "python3").exists() for d in ("usr/bin", "usr/local/bin", "bin"))
    with IsolatedRoot(root=root, apps=apps, scratch=tmp_path_factory.mktemp("mnt")) as isolated:
        yield isolated


# --- the acceptance ---------------------------------------------------------------------------


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_service_defs_serve_notebook_6_and_lab_4_side_by_side(python_less: IsolatedRoot,
                                                              apps: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """Both service definitions, {ports[0]} substituted, in one Python-less read-only root at
    the same time, as uid 1000, with the image's leaks pointing at junk."""
    servers = []
    for name, home in (("jupyter-6", None), ("jupyterlab-4", "/home/nobody")):
        port = free_port()
        env = {**JUNK_ENV, "JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1"}
        if home:
            env["HOME"] = home
        started = python_less.start(service_def_command(apps[name], port), env,
                                    log=tmp_path / f"{name}.log")
        servers.append((name, port, started))
    for name, port, started in servers:
        client = Jupyter(port, "/")
        try:
            client.wait_ready(alive=started.alive)
            assert _uid(started.proc.pid) == 1000
            assert set(client.kernelspecs()["kernelspecs"]) == {"python3"}, "no image Python"
            assert client.run("print(6*7)") == "42\n"
            where = client.run("import sys, os; print(sys.prefix, os.environ.get('HOME'), "
                               "os.environ.get('PYTHONUSERBASE'), "
                               "sorted(set(os.environ) & {INSIDE}))".replace(
                                   "{INSIDE}", repr(set(INTERNALS) - {"PYTHONUSERBASE"})))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}\n--- log ---\n{started.output()[-4000:]}"
                                 ) from exc
        prefix, home, user_base, leaked = where.split(maxsplit=3)
        assert prefix == f"/opt/apps/{name}/python"
        assert home == f"/tmp/builder-{name}-1000/home"
        assert user_base == f"{home}/.local/share/{name}/user", "the bundle's own user site"
        assert leaked.strip() == "[]", "the bundle's kernel got leaks or the launcher's internals"
        assert "is missing or read-only" in started.output()
    assert all(s.alive() for _n, _p, s in servers), "both still serve, side by side"


@pytest.mark.parametrize(("user", "uid"), [("1000:1000", 1000), ("0:0", 65534)])
def test_s6_run_script_follows_kubeflow_conventions(python_less: IsolatedRoot, tmp_path: Path,
                                                    user: str, uid: int) -> None:
    """Base URL from NB_PREFIX; started as root, it runs as $NB_USER (nobody here)."""
    port = free_port()
    prefix = "/notebook/kubeflow-user/my-notebook/"
    env = {**JUNK_ENV, "NB_PREFIX": prefix.rstrip("/"), "JUPYTER_TOKEN": TOKEN,
           "LAUNCH_IP": "127.0.0.1", "LAUNCH_PORT": str(port), "HOME": "/home/jovyan",
           "NB_USER": "nobody"}
    run = "/opt/apps/jupyter-6/share/s6/services.d/jupyter-6/run"
    started = python_less.start([run], env, log=tmp_path / "s6.log", user=user)
    client = Jupyter(port, prefix)
    try:
        client.wait_ready(alive=started.alive)
        assert _uid(started.proc.pid) == uid
        assert client.run("print(6*7)") == "42\n"
        status, _h, _b = client.request("GET", "/tree", timeout=5)
        assert status == 404, "served under NB_PREFIX only"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- log ---\n{started.output()[-4000:]}") from exc


def test_image_python_with_ipykernel_is_offered_as_a_kernel(apps: dict[str, Path],
                                                            tmp_path: Path) -> None:
    """A second root whose own Python has ipykernel (Debian's python3-ipykernel): it is
    ``python3`` (the bundle's is ``bundle-python3``), and runs code in the image's environment.
    A broken python3 comes first in PATH; it is skipped."""
    root = ensure_rootfs("bookworm", include=IMAGE_WITH_IPYKERNEL)
    port = free_port()
    # the image's own variables reach its kernel: no PYTHONHOME or libraries that break it here
    env = {**{k: v for k, v in JUNK_ENV.items() if k != "PYTHONHOME"},
           "LD_LIBRARY_PATH": "/tmp/junk/nothing-here", "JUPYTER_TOKEN": TOKEN,
           "LAUNCH_IP": "127.0.0.1"}
    with IsolatedRoot(root=root, apps={"jupyter-6": apps["jupyter-6"]},
                      scratch=tmp_path / "mnt") as isolated:
        started = isolated.start(service_def_command(apps["jupyter-6"], port), env,
                                 log=tmp_path / "jupyter-6.log")
        client = Jupyter(port, "/")
        try:
            client.wait_ready(alive=started.alive)
            specs = client.kernelspecs()["kernelspecs"]
            assert set(specs) == {"python3", "bundle-python3"}
            argv = specs["python3"]["spec"]["argv"]
            assert argv[argv.index("--") + 1:] == ["/usr/bin/python3", "-m", "ipykernel_launcher",
                                                   "-f", "{connection_file}"], "its own ipykernel"
            out = client.run("import sys, os; print(sys.executable, os.environ['PYTHONPATH'])")
            assert out.split() == ["/usr/bin/python3", "/tmp/junk/lib"], "the image's own env"
            assert client.run("print(6*7)") == "42\n"
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log ---\n{started.output()[-4000:]}") from exc
