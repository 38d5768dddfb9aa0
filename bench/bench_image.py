"""Cold node to first HTTP 200: the bundle's archive extracted, against its squashfs image
mounted (kernel loop mount, and squashfuse), against pip and uv installing the same lock.

Every variant starts from nothing on the node (an empty store, a fresh venv) and ends when the
Jupyter server it started answers 200 (``bin/launch`` with no Python on ``PATH``, a fresh
``$HOME``; the venvs run their own ``jupyter-notebook``). The bundle, its sidecar and its image
are served by a loopback HTTP server (``builder agent install URL``: the sidecar beside the
URL lists the image):

- archive: ``agent install URL --extract`` (download, sha256, checked extraction) + launch;
- image, kernel: ``agent install URL --mount kernel`` (download, sha256, superblock, loop mount)
  + launch;
- image, FUSE: ``agent install URL --mount fuse`` (squashfuse) + launch;
- pip / uv: ``venv`` + ``pip install --require-hashes -r LOCK`` (caches warm) + launch;
- warm: a second launch from the entry already installed (extracted, kernel, FUSE).

Variants are interleaved within each repeat; medians; ratios against the archive's cold time.
Mounted entries are removed after each run with ``agent gc --max-bytes 0`` (which unmounts).
The page cache is not dropped (a shared machine): "cold" means nothing installed, the image's
and archive's bytes may be cached by the kernel from the previous repeat, for every variant
alike. Root is needed for the kernel variant (else it is skipped, and said).

    python bench/bench_image.py [--repeats 5] [--bundle ARCHIVE] [--no-baselines]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import PYPI, ROOT, isolated_env, med, mib, ratio, secs, table, timed, tool
from bench_agent import pyenv_python, serve
from bench_launch import TOKEN, first_200, free_port

ARCHIVE = "archive: install --extract + launch"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_bundle(work: Path, pyenv_version: str) -> Path:
    """jupyter-6 with --image squashfs (untimed)."""
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    prefix = subprocess.run(["pyenv", "prefix", pyenv_version], capture_output=True, text=True,
                            check=True).stdout.strip()
    log("building jupyter-6 with --image squashfs (untimed)")
    _s, imported = timed([tool("builder"), "runtime", "import", prefix, "--out",
                          str(work / "runtime")], env=env)
    runtime = imported.stdout.strip().splitlines()[-1]
    _s, built = timed([tool("builder"), "build", "recipes/jupyter-6.toml", "--python-from",
                       runtime, "--out", str(work / "dist"), "--image", "squashfs"], env=env)
    return Path(built.stdout.split()[0])


class ImageBench:
    def __init__(self, bundle: Path, work: Path, python: Path, *, baselines: bool) -> None:
        self.work = work
        self.served = work / "served"
        self.served.mkdir()
        sidecar = json.loads(bundle.with_suffix("").with_suffix(".json").read_text())
        if "image" not in sidecar:
            raise SystemExit(f"error: {bundle}'s sidecar lists no image: build it with "
                             "`builder build --image squashfs`")
        for name in (bundle.name, bundle.with_suffix("").with_suffix(".json").name,
                     sidecar["image"]["filename"]):
            shutil.copy2(bundle.parent / name, self.served / name)
        self.bundle = bundle
        self.image_bytes = int(sidecar["image"]["size"])
        self.name = sidecar["name"]
        self.python = python
        self.baselines = baselines
        self.triple = f"{platform.machine()}-unknown-linux-gnu"
        self.lock = ROOT / "lockfiles" / self.name / f"{self.triple}.txt"
        self.root = os.geteuid() == 0
        self.methods = ["kernel", "fuse"] if self.root else ["fuse"]
        if not self.root:
            log("not root: the kernel variant is skipped")
        self.runs: dict[str, list[float]] = {}
        self.count = 0

    def add(self, label: str, seconds: float) -> None:
        self.runs.setdefault(label, []).append(seconds)

    def env(self, **extra: str) -> dict[str, str]:
        self.count += 1
        home = self.work / f"home-{self.count}"
        home.mkdir()
        (self.work / "tmp").mkdir(exist_ok=True)
        return {"PATH": "/nonexistent", "HOME": str(home), "LANG": "C.UTF-8",
                "TMPDIR": str(self.work / "tmp"), "JUPYTER_TOKEN": TOKEN,
                "LAUNCH_IP": "127.0.0.1", **extra}

    def launch(self, entry: Path) -> float:
        port = free_port()
        root_flag = ["--allow-root"] if self.root else []
        return first_200([str(entry / "app" / "bin" / "launch"), "--port", str(port),
                          *root_flag], self.env(), port)

    def install(self, url: str, store: Path, *how: str) -> tuple[float, Path]:
        seconds, proc = timed([tool("builder"), "agent", "install", url, "--store", str(store),
                               "--json", *how], env=isolated_env())
        return seconds, Path(json.loads(proc.stdout)["path"])

    def venv_launch(self, kind: str, i: int) -> float:
        """venv + install the lock (cache warm) + the server's first 200."""
        venv = self.work / f"{kind}-{i}"
        start = time.perf_counter()
        if kind == "pip":
            timed([str(self.python), "-m", "venv", str(venv)], env=isolated_env())
            timed([str(venv / "bin/python"), "-m", "pip", "--isolated", "install", "--no-deps",
                   "--require-hashes", "--disable-pip-version-check", f"--index-url={PYPI}",
                   "-r", str(self.lock)],
                  env=isolated_env(PIP_CACHE_DIR=str(self.work / "pip-cache")))
        else:
            uv_env = isolated_env(UV_CACHE_DIR=str(self.work / "uv-cache"))
            timed([tool("uv"), "venv", "--no-config", "--python", str(self.python), str(venv)],
                  env=uv_env)
            timed([tool("uv"), "pip", "install", "--no-config", "--no-deps", "--require-hashes",
                   "--index-url", PYPI, "--python", str(venv / "bin/python"), "-r",
                   str(self.lock)], env=uv_env)
        installed = time.perf_counter() - start
        port = free_port()
        root_flag = ["--allow-root"] if self.root else []
        served = first_200([str(venv / "bin" / "jupyter-notebook"), f"--port={port}",
                            "--no-browser", "--ip=127.0.0.1", *root_flag],
                           self.env(PATH="/usr/bin:/bin"), port)
        shutil.rmtree(venv)
        return installed + served

    def variants(self, url: str, i: int) -> dict[str, Callable[[], None]]:
        def archive() -> None:
            store = self.work / f"store-archive-{i}"
            installed, entry = self.install(url, store, "--extract")
            self.add(ARCHIVE, installed + self.launch(entry))
            self.add("  archive: install alone", installed)
            self.add("warm: extracted entry, launch", self.launch(entry))
            shutil.rmtree(store)

        def image(method: str) -> Callable[[], None]:
            def run() -> None:
                store = self.work / f"store-{method}-{i}"
                installed, entry = self.install(url, store, "--mount", method)
                self.add(f"image, {method}: install + mount + launch",
                         installed + self.launch(entry))
                self.add(f"  image, {method}: install + mount alone", installed)
                self.add(f"warm: image, {method}, launch", self.launch(entry))
                timed([tool("builder"), "agent", "gc", "--store", str(store), "--max-bytes",
                       "0"], env=isolated_env())
                shutil.rmtree(store)
            return run

        found: dict[str, Callable[[], None]] = {"archive": archive}
        for method in self.methods:
            found[method] = image(method)
        if self.baselines:
            found["pip"] = lambda: self.add("pip: venv + install (cache warm) + launch",
                                            self.venv_launch("pip", i))
            found["uv"] = lambda: self.add("uv: venv + install (cache warm) + launch",
                                           self.venv_launch("uv", i))
        return found

    def run(self, repeats: int) -> None:
        with serve(self.served) as base:
            url = base + self.bundle.name
            if self.baselines:
                log("priming pip's and uv's caches (untimed)")
                self.venv_launch("pip", -1)
                self.venv_launch("uv", -1)
            log("one untimed round (page cache, first compilations)")
            for run in self.variants(url, -1).values():
                run()
            self.runs.clear()
            for i in range(repeats):
                for run in self.variants(url, i).values():
                    run()
                log(f"repeat {i + 1}/{repeats}: done")

    def report(self) -> str:
        base = med(self.runs[ARCHIVE])
        rows = [[label, secs(med(runs)), secs(min(runs)), secs(max(runs)),
                 ratio(med(runs), base)] for label, runs in self.runs.items()]
        return table(["variant", "median s", "min s", "max s", "vs archive cold"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bundle", type=Path, metavar="ARCHIVE",
                        help="a jupyter-6 bundle built with --image squashfs, its sidecar and "
                        "image beside it (default: build one)")
    parser.add_argument("--pyenv-version", default="3.11.7")
    parser.add_argument("--no-baselines", action="store_true", help="skip pip and uv")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    python = pyenv_python(args.pyenv_version)
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        work = Path(tmp)
        bundle = args.bundle.resolve() if args.bundle else build_bundle(work,
                                                                         args.pyenv_version)
        bench = ImageBench(bundle, work, python, baselines=not args.no_baselines)
        bench.run(args.repeats)
        print(f"# cold node to first 200: {bundle.name} (archive "
              f"{mib(bundle.stat().st_size)}, squashfs image {mib(bench.image_bytes)}), "
              f"{datetime.date.today()}, {len(os.sched_getaffinity(0))} cores, "
              f"repeats={args.repeats}, interleaved; loopback HTTP")
        print("# ratio = median / median of the archive's cold install + launch; < 1 is "
              "faster\n")
        print(bench.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
