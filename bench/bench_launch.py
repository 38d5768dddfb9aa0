"""Time to the first HTTP 200: a bundle's ``bin/launch`` from a read-only mount against the same
notebook installed in a normal, writable virtual environment.

Each run starts a server on a free loopback port with a fresh empty ``$HOME`` and
``JUPYTER_TOKEN``, and polls its base URL (redirects followed, token in the header) every 20 ms
until it answers 200; then the server's process group is stopped. Variants, side by side:

- bundle, read-only mount: the extracted bundle bind-mounted read-only onto itself in a private
  mount namespace (``unshare -m``; as root only, else skipped), started with ``bin/launch``, no
  Python on ``PATH`` (an image without one);
- bundle, writable directory: the same tree without the mount;
- bundle, image Python to equip: ``bin/launch`` with this machine's ``python3`` (no ipykernel)
  on ``PATH`` and a fresh ``$HOME``: the launcher probes it and offers it as ``python3`` at once
  (ipykernel is installed by that kernel's first start, which this benchmark does not time;
  tests/integration/test_kernels.py records it);
- bundle, server without the launcher: ``bin/jupyter-notebook`` (or ``jupyter-lab``) of the
  same tree with the same flags, to show what the launcher adds;
- venv: ``python3.11 -m venv`` from pyenv, ``pip install --require-hashes -r`` the same lock
  (untimed), its console script (``.pyc`` written by pip);
- venv without .pyc: the same with ``pip install --no-compile`` and ``PYTHONDONTWRITEBYTECODE=1``,
  what a read-only mount of a tree without precompiled ``.pyc`` costs.

The bundle is built untimed (``builder build --python-from`` an imported pyenv 3.11.7) unless
``--bundle`` is given.

    python bench/bench_launch.py [--repeats 5] [--bundle BUNDLE.tar.zst] [RECIPE]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from _common import PYPI, ROOT, isolated_env, med, ratio, secs, table, timed, tool

TOKEN = "bench-token"
DEADLINE = 120.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_200(port: int, path: str = "/") -> bool:
    for _ in range(5):  # follow redirects (/ -> /tree or /lab)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path, headers={"Authorization": f"token {TOKEN}"})
            resp = conn.getresponse()
            resp.read()
        except OSError:
            return False
        finally:
            conn.close()
        if resp.status not in (301, 302, 303, 307, 308):
            return resp.status == 200
        location = resp.getheader("Location") or "/"
        path = "/" + location.split("://", 1)[1].partition("/")[2] if "://" in location \
            else location
    return False


def first_200(argv: list[str], env: dict[str, str], port: int, path: str = "/") -> float:
    """Seconds from starting ``argv`` to the first HTTP 200 of ``path``; the server is stopped
    after."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.perf_counter() - start < DEADLINE:
            if answers_200(port, path):
                return time.perf_counter() - start
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise SystemExit(f"error: {argv[0]} exited:\n{proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        raise SystemExit(f"error: no HTTP 200 from {argv[0]} within {DEADLINE} s")
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        if proc.stderr is not None:
            proc.stderr.close()


class LaunchBench:
    def __init__(self, recipe: Path, bundle: Path, work: Path, pyenv_version: str) -> None:
        data = tomllib.loads(recipe.read_text(encoding="utf-8"))
        self.name = data["app"]["name"]
        self.entry = data["service"]["command"][0]  # bin/jupyter-notebook | bin/jupyter-lab
        self.work = work
        self.tree = work / "bundle"
        self.tree.mkdir()
        subprocess.run(["tar", "--zstd", "-xf", str(bundle), "-C", str(self.tree)], check=True)
        self.app = self.tree / "app"
        self.root = os.geteuid() == 0
        self.can_mount = self.root and shutil.which("unshare") is not None
        triple = f"{platform.machine()}-unknown-linux-gnu"
        self.lock = ROOT / "lockfiles" / self.name / f"{triple}.txt"
        python = Path(subprocess.run(["pyenv", "prefix", pyenv_version], capture_output=True,
                                     text=True, check=True).stdout.strip()) / "bin/python3"
        self.venvs = {"venv": work / "venv", "venv without .pyc": work / "venv-nopyc"}
        for label, venv in self.venvs.items():
            log(f"{label}: python -m venv + pip install -r {self.lock.name} (untimed set-up)")
            timed([str(python), "-m", "venv", str(venv)], env=isolated_env())
            compile_flag = ["--no-compile"] if "without" in label else []
            timed([str(venv / "bin/python"), "-m", "pip", "--isolated", "install", "--no-deps",
                   "--require-hashes", "--disable-pip-version-check", f"--index-url={PYPI}",
                   *compile_flag, "-r", str(self.lock)],
                  env=isolated_env(PIP_CACHE_DIR=str(work / "pip-cache")))
        self.runs: dict[str, list[float]] = {}

    def env(self, i: int, **extra: str) -> dict[str, str]:
        home = self.work / f"home-{len(self.runs)}-{i}-{time.monotonic_ns()}"
        home.mkdir()
        (self.work / "tmp").mkdir(exist_ok=True)
        return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                "TMPDIR": str(self.work / "tmp"), "JUPYTER_TOKEN": TOKEN, **extra}

    def variants(self) -> dict[str, Callable[[int, int], float]]:
        root_flag = ["--allow-root"] if self.root else []
        server_flags = ["--no-browser", "--ip=127.0.0.1", *root_flag]

        def launch(no_python: bool) -> Callable[[int, int], float]:
            # no Python on PATH: the image has none; else the host's python3 (no ipykernel)
            path = {"PATH": "/nonexistent"} if no_python else {}

            def run(i: int, port: int) -> float:
                return first_200([str(self.app / "bin/launch"), "--port", str(port), *root_flag],
                                 self.env(i, LAUNCH_IP="127.0.0.1", **path), port)
            return run

        def mounted(i: int, port: int) -> float:
            app = str(self.app)
            script = (f'mount --bind "{app}" "{app}" && mount -o remount,bind,ro "{app}" && '
                      f'PATH=/nonexistent exec "{app}/bin/launch" --port {port} '
                      f'{" ".join(root_flag)}')
            return first_200(["unshare", "-m", "--propagation", "private", "--", "/bin/sh",
                              "-c", script], self.env(i, LAUNCH_IP="127.0.0.1"), port)

        def direct(i: int, port: int) -> float:
            return first_200([str(self.app / self.entry), f"--port={port}", *server_flags],
                             self.env(i), port)

        def venv(label: str, **extra: str) -> Callable[[int, int], float]:
            def run(i: int, port: int) -> float:
                script = self.venvs[label] / "bin" / Path(self.entry).name
                return first_200([str(script), f"--port={port}", *server_flags],
                                 self.env(i, **extra), port)
            return run

        found: dict[str, Callable[[int, int], float]] = {}
        if self.can_mount:
            found["bundle, read-only mount, bin/launch"] = mounted
        found["bundle, writable directory, bin/launch"] = launch(no_python=True)
        found["bundle, bin/launch + image Python to equip (1st launch)"] = launch(no_python=False)
        found["bundle, server without the launcher"] = direct
        found["venv (pip install, .pyc written)"] = venv("venv")
        found["venv without .pyc (read-only-like)"] = venv("venv without .pyc",
                                                           PYTHONDONTWRITEBYTECODE="1")
        return found

    def run(self, repeats: int) -> None:
        variants = self.variants()
        log("warming the page cache (one untimed start of each variant)")
        for run in variants.values():
            run(-1, free_port())
        for i in range(repeats):
            for label, run in variants.items():
                self.runs.setdefault(label, []).append(run(i, free_port()))
            log(f"repeat {i + 1}/{repeats}: done")

    def report(self) -> str:
        base = med(self.runs["venv (pip install, .pyc written)"])
        rows = [[label, secs(med(runs)), secs(min(runs)), secs(max(runs)), ratio(med(runs), base)]
                for label, runs in self.runs.items()]
        return table(["variant", "median s", "min s", "max s", "vs venv"], rows)


def build_bundle(recipe: Path, work: Path, version: str) -> Path:
    prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True,
                            check=True).stdout.strip()
    env = isolated_env(BUILDER_CACHE_DIR=str(ROOT / ".cache" / "test-builder"))
    log(f"builder runtime import + builder build {recipe.name} (untimed set-up)")
    _, proc = timed([tool("builder"), "runtime", "import", prefix, "--out",
                     str(work / "runtime")], env=env)
    archive = proc.stdout.splitlines()[0]
    _, proc = timed([tool("builder"), "build", str(recipe), "--python-from", archive, "--out",
                     str(work / "dist")], env=env)
    return Path(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path, nargs="?", default=ROOT / "recipes/jupyter-6.toml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bundle", type=Path, help="a built bundle of RECIPE (.tar.zst)")
    parser.add_argument("--pyenv-version", default="3.11.7")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        work = Path(tmp)
        bundle = (args.bundle.resolve() if args.bundle
                  else build_bundle(args.recipe.resolve(), work, args.pyenv_version))
        bench = LaunchBench(args.recipe.resolve(), bundle, work, args.pyenv_version)
        bench.run(args.repeats)
        print(f"# launch: {args.recipe.name}, {datetime.date.today()}, "
              f"{len(os.sched_getaffinity(0))} cores, repeats={args.repeats}, first HTTP 200 "
              "at the base URL (redirects followed)")
        if not bench.can_mount:
            print("# (not root: the read-only mount variant was skipped)")
        print("# ratio = median / venv median; > 1 is slower\n")
        print(bench.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
