"""Loopback servers and host interpreters shared by the integration tests."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVER_LIFETIME = 120.0  # seconds; the server stops itself even if teardown never runs
REGISTRY_LIFETIME = 600  # seconds: the registry ends itself even if teardown never runs


# -- loopback mirror -----------------------------------------------------------------------------


@dataclass
class Mirror:
    url: str
    root: Path
    requests: list[tuple[str, str, str]]  # (method, raw path, user agent)


class _Handler(SimpleHTTPRequestHandler):
    log: list[tuple[str, str, str]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        self.log.append((self.command, self.path, self.headers.get("User-Agent", "")))
        return super().send_head()


@contextmanager
def serve_directory(root: Path, *, handler: type[SimpleHTTPRequestHandler] = _Handler,
                    lifetime: float = SERVER_LIFETIME) -> Iterator[int]:
    """Serve ``root`` on 127.0.0.1 (a free port, yielded); the server stops itself after
    ``lifetime`` seconds even if the caller never returns. Used by tests and bench/."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    stopper = threading.Timer(lifetime, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield server.server_port
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve_mirror(tmp_path: Path) -> Iterator[Mirror]:
    """Serve ``tmp_path/mirror`` on 127.0.0.1, recording every request."""
    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[tuple[str, str, str]] = []
    handler = type("Handler", (_Handler,), {"log": requests})
    with serve_directory(root, handler=handler) as port:
        yield Mirror(url=f"http://127.0.0.1:{port}/pbs", root=root / "pbs", requests=requests)


# -- loopback OCI registry ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RegistryFailedError(RuntimeError):
    """docker-registry did not answer on its port (its log is the message)."""


@contextmanager
def serve_registry(root: Path, *, lifetime: int = REGISTRY_LIFETIME) -> Iterator[str]:
    """Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP), data under ``root``; yields
    ``host:port``; stopped on exit (and by ``timeout`` after ``lifetime`` seconds anyway)."""
    port = free_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = (root / "log").open("wb")
    proc = subprocess.Popen(["timeout", str(lifetime), "docker-registry", "serve",
                             str(config)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                if r.status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RegistryFailedError(
                    f"docker-registry did not start: {(root / 'log').read_text()}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def pyenv_prefix(version: str) -> Path | None:
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        proc = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    fallback = Path.home() / ".pyenv" / "versions" / version
    return fallback if fallback.is_dir() else None
