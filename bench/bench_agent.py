"""Injecting an app on a node: ``builder agent install NAME --index URL`` against installing the
same lock with pip and with uv into a fresh venv.

cold node: the catalog (``index.json`` + bundle + sidecar) is served by a loopback HTTP server;
each run starts from an empty store and ends with the entry ready (downloaded, sha256 checked,
extracted, verified, renamed into place). warm node: the same command again, the entry already in
the store. Baselines: ``python3.11 -m venv`` + ``pip install --no-deps --require-hashes -r LOCK``
(PyPI; pip's cache warm, and cold), and ``uv venv`` + ``uv pip install`` likewise; both get only
the packages, on an interpreter the node must already have. For reference: ``sha256sum`` and
``tar --zstd -xf`` of the archive already on disk (no download, no checks, not atomic).

The bundle is built once, untimed (``builder runtime import "$(pyenv prefix 3.11.7)"`` then
``builder build``), unless ``--bundle ARCHIVE`` (with its sidecar beside it) is given.

``--store`` measures the store alone (issue 16), interleaved, the page cache dropped before
every cold run (root; otherwise said in the header): ``agent install ARCHIVE`` on an empty store
against ``sha256sum`` + ``tar --zstd -xf`` of the same file (wall and CPU seconds, children's
user + sys: the CPU ratio is the one a shared machine does not blur), the warm node, and the disk
(``du`` semantics: each inode once) of one store holding two apps (``--second-app``) and two
builds of one app (``--second-build``) against two stores holding one entry each.

Where the cold runs write (``--fs``): ``fresh-ext4`` (the default for root) gives each cold run
its own new ext4 file system, an image file beside the work directory on a loop device with
direct I/O (no second page cache), inode tables written by ``mkfs`` (no lazy init in the
background), unmounted and removed after the run. Without it every run pays for the one before:
ext4 skips inodes freed in the last 5-10 s when it allocates (``recently_deleted``), and after the
previous run's tree was removed that scan took most of the kernel time of both commands (perf:
``find_inode_bit`` / ``recently_deleted`` under ``ext4_create``) and swung them 2-7x from run to
run. ``workdir`` writes in the work directory itself (the former behaviour; not root: the only
one); ``tmpfs`` in a fresh tmpfs per run (no disk, no journal: Python's share shows most).

    python bench/bench_agent.py [--repeats 3] [--bundle ARCHIVE] [--no-cold-baselines]
    python bench/bench_agent.py --store --bundle A [--second-app B] [--second-build C] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

# the bounded loopback server the tests use (tests/servers.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import PYPI, ROOT, isolated_env, med, mib, ratio, secs, table, timed, tool, tree_size
from servers import serve_directory

SERVER_LIFETIME = 3600.0  # the server stops itself even if the benchmark is killed


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """``directory`` on http://127.0.0.1:<free port>/ for the duration (bounded)."""
    with serve_directory(directory, handler=_Quiet, lifetime=SERVER_LIFETIME) as port:
        yield f"http://127.0.0.1:{port}/"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pyenv_python(version: str) -> Path:
    prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True,
                            check=True).stdout.strip()
    return Path(prefix) / "bin" / f"python{'.'.join(version.split('.')[:2])}"


def build_bundle(work: Path, version: str) -> Path:
    env = isolated_env(BUILDER_CACHE_DIR=str(ROOT / ".cache" / "bench-builder"))
    prefix = pyenv_python(version).parent.parent
    log(f"builder runtime import {prefix} + builder build (untimed set-up)")
    _, proc = timed([tool("builder"), "runtime", "import", str(prefix), "--out",
                     str(work / "runtime")], env=env)
    runtime = proc.stdout.splitlines()[0]
    _, proc = timed([tool("builder"), "build", "recipes/jupyter-6.toml", "--python-from",
                     runtime, "--out", str(work / "built")], env=env)
    return Path(proc.stdout.strip().splitlines()[-1])


class AgentBench:
    def __init__(self, bundle: Path, work: Path, python: Path) -> None:
        self.work, self.python = work, python
        self.served = work / "served"
        self.served.mkdir()
        sidecar = bundle.with_name(bundle.name[: -len(".tar.zst")] + ".json")
        for path in (bundle, sidecar):
            shutil.copy2(path, self.served / path.name)
        self.bundle = self.served / bundle.name
        self.env = isolated_env()
        timed([tool("builder"), "index", str(self.served)], env=self.env)
        self.triple = f"{platform.machine()}-unknown-linux-gnu"
        self.lock = ROOT / "lockfiles" / "jupyter-6" / f"{self.triple}.txt"
        self.runs: dict[str, list[float]] = {}
        self.sizes: dict[str, int] = {}

    def add(self, label: str, seconds: float) -> None:
        self.runs.setdefault(label, []).append(seconds)

    def agent(self, url: str, store: Path) -> float:
        seconds, _ = timed([tool("builder"), "agent", "install", "jupyter-6", "--index",
                            f"{url}index.json", "--store", str(store)], env=self.env)
        return seconds

    def plain_extract(self, dest: Path) -> float:
        """What the agent's checks and atomicity cost: hash and extract, nothing checked."""
        dest.mkdir()
        hashed, _ = timed(["sha256sum", str(self.bundle)], env=self.env)
        extracted, _ = timed(["tar", "--zstd", "-xf", str(self.bundle), "-C", str(dest)],
                             env=self.env)
        return hashed + extracted

    def pip(self, venv: Path, cache: Path) -> tuple[float, float]:
        env = isolated_env(PIP_CACHE_DIR=str(cache))
        made, _ = timed([str(self.python), "-m", "venv", str(venv)], env=env)
        installed, _ = timed(
            [str(venv / "bin" / "python"), "-m", "pip", "--isolated", "install", "--no-deps",
             "--require-hashes", "--disable-pip-version-check", "--no-warn-script-location",
             f"--index-url={PYPI}", "-r", str(self.lock)], env=env)
        return made, installed

    def uv(self, venv: Path, cache: Path) -> tuple[float, float]:
        env = isolated_env(UV_CACHE_DIR=str(cache))
        made, _ = timed([tool("uv"), "venv", "--no-config", "--python", str(self.python),
                         str(venv)], env=env)
        installed, _ = timed([tool("uv"), "pip", "install", "--no-config", "--no-deps",
                              "--require-hashes", "--index-url", PYPI, "--python",
                              str(venv / "bin" / "python"), "-r", str(self.lock)], env=env)
        return made, installed

    def run(self, repeats: int, *, cold_baselines: bool) -> None:
        log("priming pip's and uv's caches (untimed)")
        self.pip(self.work / "prime-pip", self.work / "pip-cache")
        self.uv(self.work / "prime-uv", self.work / "uv-cache")
        with serve(self.served) as url:
            for i in range(repeats):
                store = self.work / f"store-{i}"
                self.add("agent install, cold node (loopback catalog)", self.agent(url, store))
                self.add("agent install, warm node (entry in the store)",
                         self.agent(url, store))
                self.sizes["agent install, cold node (loopback catalog)"] = \
                    tree_size(store / "entries")[0]
                self.add("  reference: sha256sum + tar --zstd -xf of the local archive",
                         self.plain_extract(self.work / f"tar-{i}"))
                variants = [("warm", self.work / "pip-cache", self.work / "uv-cache")]
                if cold_baselines:
                    variants.append(("cold", self.work / f"cache-pip-cold-{i}",
                                     self.work / f"cache-uv-cold-{i}"))
                for mode, pip_cache, uv_cache in variants:
                    venv = self.work / f"pip-{mode}-{i}"
                    made, installed = self.pip(venv, pip_cache)
                    self.add(f"pip: venv + install, cache {mode}", made + installed)
                    self.add(f"  pip install alone, cache {mode}", installed)
                    self.sizes[f"pip: venv + install, cache {mode}"] = tree_size(venv)[0]
                    venv = self.work / f"uv-{mode}-{i}"
                    made, installed = self.uv(venv, uv_cache)
                    self.add(f"uv: venv + pip install, cache {mode}", made + installed)
                    self.sizes[f"uv: venv + pip install, cache {mode}"] = tree_size(venv)[0]
                log(f"repeat {i + 1}/{repeats}: done")

    def report(self) -> str:
        base = med(self.runs["pip: venv + install, cache warm"])
        uv = med(self.runs["uv: venv + pip install, cache warm"])
        rows = [[label, secs(med(runs)), secs(min(runs)), ratio(med(runs), base),
                 ratio(med(runs), uv), mib(self.sizes[label]) if label in self.sizes else ""]
                for label, runs in self.runs.items()]
        return table(["variant", "median s", "min s", "vs pip warm", "vs uv warm",
                      "on disk"], rows)


def drop_caches() -> bool:
    """Write back and drop the page cache (root only); False when that is not allowed."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n", encoding="ascii")
    except OSError:
        return False
    return True


FS_KINDS = ("fresh-ext4", "tmpfs", "workdir")
FS_BYTES = 4 << 30  # each fresh file system (sparse image; one entry and its objects need ~0.4)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def scratch(work: Path, name: str, fs: str) -> Iterator[Path]:
    """An empty directory for one run, on the file system ``fs`` (see ``--fs``); gone after."""
    where = work / name
    where.mkdir()
    image = work / f"{name}.img"
    loop = None
    try:
        if fs == "tmpfs":
            _run("mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0755", "tmpfs", str(where))
        elif fs == "fresh-ext4":
            with image.open("wb") as sparse:
                sparse.truncate(FS_BYTES)
            _run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                 str(image))
            loop = _run("losetup", "--find", "--show", "--direct-io=on", str(image))
            _run("mount", loop, str(where))
        try:
            yield where
        finally:
            if fs != "workdir":
                _run("umount", str(where))
    finally:
        if loop is not None:
            _run("losetup", "--detach", loop)
        image.unlink(missing_ok=True)
        shutil.rmtree(where)


def cpu_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + sys of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _ = timed(argv, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def du(*roots: Path) -> int:
    """Bytes on disk below the roots, each inode once (hard links counted once, like ``du``)."""
    seen: dict[tuple[int, int], int] = {}
    for root in roots:
        for folder, dirs, names in os.walk(root):
            for name in [*dirs, *names, "."] if folder == str(root) else [*dirs, *names]:
                st = os.lstat(os.path.join(folder, name))  # noqa: PTH118
                seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


class StoreBench:
    """Issue 16: the cold install against tar, the warm node, and the store's disk."""

    def __init__(self, bundle: Path, work: Path, fs: str) -> None:
        self.bundle, self.work, self.fs = bundle, work, fs
        self.env = isolated_env()
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.dropped = True
        self.disk: list[list[str]] = []

    def _add(self, label: str, wall: float, cpu: float) -> None:
        self.wall.setdefault(label, []).append(wall)
        self.cpu.setdefault(label, []).append(cpu)

    def install(self, archive: Path, store: Path) -> tuple[float, float]:
        return cpu_timed([tool("builder"), "agent", "install", str(archive), "--store",
                          str(store)], self.env)

    def reference(self, dest: Path) -> tuple[float, float]:
        dest.mkdir()
        hashed = cpu_timed(["sha256sum", str(self.bundle)], self.env)
        extracted = cpu_timed(["tar", "--zstd", "-xf", str(self.bundle), "-C", str(dest)],
                              self.env)
        return hashed[0] + extracted[0], hashed[1] + extracted[1]

    def cold(self, repeats: int) -> None:
        for i in range(repeats):
            runs = [(INSTALL, lambda where: self.install(self.bundle, where / "store")),
                    (REFERENCE, lambda where: self.reference(where / "tar"))]
            for label, run in runs if i % 2 == 0 else runs[::-1]:  # interleaved
                with scratch(self.work, f"cold-{i}", self.fs) as where:
                    self.dropped &= drop_caches()
                    self._add(label, *run(where))
                    if label == INSTALL:
                        self._add("agent install, warm node (entry in the store)",
                                  *self.install(self.bundle, where / "store"))
            log(f"repeat {i + 1}/{repeats}: done")

    def pair(self, label: str, second: Path) -> None:
        """One store with both entries against a store for each."""
        with scratch(self.work, "pair", self.fs) as where:
            together, alone_a, alone_b = (where / n for n in ("both", "alone-a", "alone-b"))
            self.install(self.bundle, together)
            self.dropped &= drop_caches()
            wall, cpu = self.install(second, together)
            self._add(f"agent install of {label} into a store holding the first", wall, cpu)
            self.install(self.bundle, alone_a)
            self.install(second, alone_b)
            full = du(alone_a) + du(alone_b)
            shared = du(together)
            self.disk.append([label, mib(full), mib(shared), ratio(shared, full),
                              mib(shared - du(alone_a))])

    def report(self) -> str:
        base_wall = med(self.wall[REFERENCE])
        base_cpu = med(self.cpu[REFERENCE])
        rows = [[label, secs(med(self.wall[label])), secs(min(self.wall[label])),
                 ratio(med(self.wall[label]), base_wall), secs(med(self.cpu[label])),
                 ratio(med(self.cpu[label]), base_cpu)] for label in self.wall]
        out = table(["variant", "median s", "min s", "wall vs tar", "CPU s", "CPU vs tar"],
                    rows)
        if self.disk:
            out += "\n\n" + table(["store holding", "two stores (one entry each)",
                                    "one store (both)", "ratio", "added by the second"],
                                   self.disk)
        return out


INSTALL = "agent install, cold node (local archive)"
REFERENCE = "  reference: sha256sum + tar --zstd -xf of the same file"


def store_main(args: argparse.Namespace) -> int:
    if args.bundle is None:
        raise SystemExit("error: --store needs --bundle ARCHIVE (with its sidecar beside it)")
    bundle = args.bundle.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        fs = args.fs or ("fresh-ext4" if os.geteuid() == 0 else "workdir")
        if fs != "workdir" and os.geteuid() != 0:
            raise SystemExit(f"error: --fs {fs} mounts a file system: run as root, or "
                             "--fs workdir")
        bench = StoreBench(bundle, Path(tmp), fs)
        bench.cold(args.repeats)
        if args.second_app:
            bench.pair(f"two apps ({args.second_app.name.split('-x86_64')[0]})",
                       args.second_app.resolve())
        if args.second_build:
            bench.pair("two builds of one app", args.second_build.resolve())
        print(f"# agent store: {bundle.name} ({mib(bundle.stat().st_size)}), "
              f"{datetime.date.today()}, {len(os.sched_getaffinity(0))} cores, load "
              f"{os.getloadavg()[0]:.1f}, repeats={args.repeats}, page cache "
              f"{'dropped before each cold run' if bench.dropped else 'NOT dropped (not root)'}"
              f", each run on {fs}")
        print("# wall/CPU ratio = median / reference median; CPU = user + sys of the command "
              "and its children; disk in du semantics (each inode once)\n")
        print(bench.report())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bundle", type=Path, metavar="ARCHIVE",
                        help="a jupyter-6 bundle with its sidecar (default: build one)")
    parser.add_argument("--pyenv-version", default="3.11.7")
    parser.add_argument("--no-cold-baselines", action="store_true",
                        help="skip pip/uv with an empty cache (they download from PyPI)")
    parser.add_argument("--store", action="store_true",
                        help="the store alone: cold install vs tar, warm node, disk (issue 16)")
    parser.add_argument("--second-app", type=Path, metavar="ARCHIVE",
                        help="--store: another app's bundle, for the disk of two apps")
    parser.add_argument("--second-build", type=Path, metavar="ARCHIVE",
                        help="--store: another build of the same app, for the disk of two builds")
    parser.add_argument("--fs", choices=FS_KINDS,
                        help="--store: where each cold run writes (default: fresh-ext4 as "
                             "root, else workdir)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.store:
        return store_main(args)
    python = pyenv_python(args.pyenv_version)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        bundle = args.bundle.resolve() if args.bundle else build_bundle(work,
                                                                         args.pyenv_version)
        bench = AgentBench(bundle, work, python)
        bench.run(args.repeats, cold_baselines=not args.no_cold_baselines)
        print(f"# agent: {bundle.name} ({mib(bundle.stat().st_size)}) for {bench.triple}, "
              f"{datetime.date.today()}, {len(os.sched_getaffinity(0))} cores, "
              f"repeats={args.repeats}, baselines on {python.name} {args.pyenv_version}")
        print("# ratio = median / baseline median; > 1 is slower; 'on disk' = bytes of the "
              "store entry or the venv\n")
        print(bench.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
