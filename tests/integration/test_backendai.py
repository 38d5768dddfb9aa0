"""Backend.AI, checked by Backend.AI's own code: the jupyter-6 and jupyterlab-4 bundles (both
declaring port 8888) installed by the agent, mounted into a Python-less minbase root exactly as
``builder agent mounts jupyter-6 jupyterlab-4 --format backendai`` says, their service
definitions parsed by the ``ServiceParser`` of PyPI's ``backend.ai-kernel`` from the directory
its kernel runner reads, the one ``ai.backend.service-ports`` value parsed by
``backend.ai-common``'s ``parse_service_ports``, and the commands it builds started in the root
(own mount and network namespaces, uid 1000): both answer HTTP 200 at their ``url_template`` and
run a kernel that prints 42.

Backend.AI's packages need Python 3.13 (pyenv's, or ``python3.13`` on PATH); they are installed
once, pinned, into a venv cached under ``.cache/backendai/``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from rootfs import ensure_rootfs
from servers import pyenv_prefix
from test_launch import TOKEN, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BACKENDAI = ("backend.ai-kernel==26.9.6", "backend.ai-common==26.9.6")
CACHE = ROOT / ".cache" / "backendai"


def python313() -> Path | None:
    prefix = pyenv_prefix("3.13.0") or pyenv_prefix("3.13")
    if prefix is not None and (prefix / "bin" / "python3.13").exists():
        return prefix / "bin" / "python3.13"
    found = shutil.which("python3.13")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def backendai_python() -> Path:
    """The Python of a venv with Backend.AI's kernel runner and common library (pinned)."""
    python = python313()
    if python is None:
        pytest.skip("backend.ai-kernel 26.9.6 needs Python 3.13 (pyenv install 3.13.0)")
    venv = CACHE / ("venv-" + "-".join(r.replace("==", "-") for r in BACKENDAI))
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / ".venv.lock")):
        if (venv / ".complete").is_file():
            return venv / "bin" / "python"
        shutil.rmtree(venv, ignore_errors=True)  # an interrupted attempt's
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=300)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", *BACKENDAI],
                              capture_output=True, text=True, check=False, timeout=1800,
                              env={**env, "PIP_CONFIG_FILE": os.devnull})
        if proc.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"pip install {' '.join(BACKENDAI)} failed:\n{proc.stderr[-3000:]}")
        (venv / ".complete").write_text("\n".join(BACKENDAI) + "\n")
    return venv / "bin" / "python"


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder", "agent", *args],
                          capture_output=True, text=True, check=False, timeout=600)


@dataclass
class Container:
    """A private mount and network namespace (loopback only) holding the read-only minbase root
    with the plan's mounts applied, its /etc a tmpfs copy (so /etc/backend.ai can exist)."""

    root: Path
    mounts: list[dict[str, Any]]
    scratch: Path
    holder: subprocess.Popen[bytes] | None = None
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def mount(self) -> Path:
        return self.scratch / "root"

    def __enter__(self) -> Container:
        self.mount.mkdir(parents=True)
        q = shlex.quote
        script = ["set -eu", f"M={q(str(self.mount))}", f"R={q(str(self.root))}",
                  "ip link set lo up",
                  'mount --bind "$R" "$M"', 'mount -o remount,bind,ro "$M"',
                  'mount -t proc proc "$M/proc"',
                  'mount -t tmpfs -o mode=1777,size=1g tmpfs "$M/tmp"',
                  'mount --rbind /dev "$M/dev"',
                  'mount -t tmpfs -o mode=755,size=1m tmpfs "$M/opt"',
                  'mount -t tmpfs -o mode=755,size=64m tmpfs "$M/etc"',
                  'cp -a "$R/etc/." "$M/etc/"']
        for m in self.mounts:
            assert m["permission"] == "ro" and m["type"] == "bind", m
            target = '"$M"' + q(m["target"])
            if Path(m["source"]).is_dir():
                script.append(f"mkdir -p {target}")
            else:
                script += [f"mkdir -p $(dirname {target})", f": > {target}"]
            script += [f"mount --bind {q(m['source'])} {target}",
                       f"mount -o remount,bind,ro {target}"]
        script += ['mount -o remount,ro "$M/opt"', 'mount -o remount,ro "$M/etc"',
                   "echo ready", "exec sleep 3600"]
        errors = self.scratch / "holder.log"
        with errors.open("wb") as err:
            self.holder = subprocess.Popen(
                ["unshare", "-m", "-n", "--propagation", "private", "--", "/bin/sh", "-c",
                 "\n".join(script)], stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != b"ready":
            self._stop_holder()
            raise AssertionError(f"setting up the root failed: {errors.read_text()}")
        return self

    def enter(self, *, net: bool = True, mnt: bool = True) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), *(["-m"] if mnt else []),
                *(["-n"] if net else []), "--"]

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """``argv`` in the root as uid 1000 with exactly ``env``, in its own process group."""
        command = [*self.enter(), "chroot", "--userspec=1000:1000", str(self.mount),
                   "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in sorted(env.items())), *argv]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.started.append(proc)
        return proc

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.started):
            stop(proc)
        self._stop_holder()

    def _stop_holder(self) -> None:
        if self.holder is None:
            return
        if self.holder.poll() is None:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(timeout=30)
        if self.holder.stdout is not None:
            self.holder.stdout.close()


# Run by the test's own Python inside the container's network namespace: Jupyter's REST API
# and kernel channels (test_launch's client), on the port and path Backend.AI's url_template
# gives; prints {"status": ..., "kernel": ...}.
CLIENT = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{integration!r}, {tests!r}]
    from test_launch import Jupyter
    port, path, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    client = Jupyter(port, "/", token)
    client.wait_ready(deadline=120)
    status, _headers, _body = client.request("GET", path, timeout=10)
    print(json.dumps({{"status": status, "kernel": client.run("print(6*7)")}}))
""").format(integration=str(HERE), tests=str(HERE.parent))


def url_path(url_template: str, port: int) -> str:
    url = url_template.format(protocol="http", host="127.0.0.1", port=port)
    prefix = f"http://127.0.0.1:{port}"
    assert url.startswith(prefix + "/"), url
    return url[len(prefix):]


def test_backend_ai_parses_and_starts_two_jupyters_from_one_mounts_command(
        jupyter_bundle: Path, lab_bundle: Path, backendai_python: Path,
        tmp_path: Path) -> None:
    if shutil.which("ip") is None:
        pytest.skip("ip not installed (Debian: apt-get install -y iproute2)")
    store = str(tmp_path / "store")
    for bundle in (jupyter_bundle, lab_bundle):
        installed = agent("install", str(bundle), "--store", store)
        assert installed.returncode == 0, installed.stderr
    mounts = agent("mounts", "jupyter-6", "jupyterlab-4", "--store", store,
                   "--format", "backendai")
    assert mounts.returncode == 0, mounts.stderr
    plan = json.loads(mounts.stdout)
    assert plan["service_ports"] == "jupyter-6:http:8888,jupyterlab-4:http:8889"
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)

    root = ensure_rootfs("bookworm")
    assert not (root / "usr/bin/python3").exists(), "the image has no Python"
    # a user's NB_PREFIX (an allowed env) cannot move the server off url_template
    options = {"jupyter-6": {"envs": {"NB_PREFIX": "/moved"}}, "jupyterlab-4": {}}
    refused = {"jupyter-6": {"arguments": {"--base-url": "/moved/"}}}
    with Container(root=root, mounts=plan["mounts"], scratch=tmp_path / "c") as box:
        probe = [str(backendai_python), str(HERE / "backendai_probe.py"), str(box.mount),
                 plan["service_ports"]]
        # ai.backend.kernel re-executes itself on import (a process name of its own) unless it
        # already did: run as the re-executed kernel runner, in its venv
        runner_env = {**os.environ, "BACKEND_REEXECED": "1",
                      "VIRTUAL_ENV": str(backendai_python.parent.parent)}
        parsed = subprocess.run([*box.enter(net=False), *probe, json.dumps(options)],
                                capture_output=True, text=True, check=False, timeout=120,
                                env=runner_env)
        assert parsed.returncode == 0, parsed.stderr
        result = json.loads(parsed.stdout)
        assert result["service_defs_dir"] == "/etc/backend.ai/service-defs"
        assert all(m["target"].startswith(result["service_defs_dir"] + "/")
                   for m in plan["mounts"] if m["target"].endswith(".json"))
        services = result["services"]
        assert {n: s["ports"] for n, s in services.items()} == {
            "jupyter-6": [8888], "jupyterlab-4": [8889]}
        no = subprocess.run([*box.enter(net=False), *probe, json.dumps(refused)],
                            capture_output=True, text=True, check=False, timeout=120,
                            env=runner_env)
        assert json.loads(no.stdout)["services"]["jupyter-6"]["refused"] == (
            "DisallowedArgument: Argument --base-url not allowed for service jupyter-6"), no

        for name, service in services.items():
            assert service["argv"][:3] == [f"/opt/apps/{name}/bin/launch", "--port",
                                           str(service["ports"][0])]
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "JUPYTER_TOKEN": TOKEN,
                   **service["env"]}
            service["proc"] = box.start(service["argv"], env, tmp_path / f"{name}.log")
        for name, service in services.items():
            port = service["ports"][0]
            path = url_path(service["url_template"], port)
            assert path == {"jupyter-6": "/tree", "jupyterlab-4": "/lab"}[name]
            client = subprocess.run(
                [*box.enter(mnt=False), sys.executable, "-c", CLIENT, str(port), path, TOKEN],
                capture_output=True, text=True, check=False, timeout=300)
            log = (tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]
            assert client.returncode == 0, f"{name}: {client.stderr[-3000:]}\n--- log ---\n{log}"
            assert json.loads(client.stdout) == {"status": 200, "kernel": "42\n"}, log
        assert all(s["proc"].poll() is None for s in services.values()), "both still serve"

    # the draft proposal's directory (still an option) is not where the kernel runner looks:
    # there it finds no definition and would answer "unsupported service"
    proposal = agent("mounts", "jupyter-6", "--store", store, "--format", "backendai",
                     "--service-defs-dir", "/opt/kernel/service-defs")
    assert proposal.returncode == 0, proposal.stderr
    elsewhere = tmp_path / "proposal-root"
    for m in json.loads(proposal.stdout)["mounts"]:
        if m["target"].endswith(".json"):
            target = elsewhere / m["target"].lstrip("/")
            target.parent.mkdir(parents=True)
            shutil.copyfile(m["source"], target)
    unread = subprocess.run([str(backendai_python), str(HERE / "backendai_probe.py"),
                             str(elsewhere), "jupyter-6:http:8888", "{}"],
                            capture_output=True, text=True, check=False, timeout=120,
                            env=runner_env)
    assert unread.returncode == 0, unread.stderr
    assert json.loads(unread.stdout)["services"]["jupyter-6"]["argv"] is None
