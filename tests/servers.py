"""Loopback servers and host interpreters shared by the integration tests."""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVER_LIFETIME = 120.0  # seconds; the server stops itself even if teardown never runs


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
def serve_mirror(tmp_path: Path) -> Iterator[Mirror]:
    """Serve ``tmp_path/mirror`` on 127.0.0.1; the server stops itself after SERVER_LIFETIME."""
    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[tuple[str, str, str]] = []
    handler = type("Handler", (_Handler,), {"log": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    stopper = threading.Timer(SERVER_LIFETIME, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield Mirror(url=f"http://127.0.0.1:{server.server_port}/pbs", root=root / "pbs",
                     requests=requests)
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)



def pyenv_prefix(version: str) -> Path | None:
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        proc = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    fallback = Path.home() / ".pyenv" / "versions" / version
    return fallback if fallback.is_dir() else None
