"""Build time and bundle size of ``builder build RECIPE --python-from ARCHIVE`` against a naive
bundle made from the same lock and the same interpreter archive.

builder: a fresh ``--out`` directory per run (no bundle cache hit; its wheel cache warm), then
the same command again (the cache-hit rebuild). naive: extract the interpreter archive,
``python/bin/python3 -m pip install --no-deps --require-hashes -r LOCK`` into it (isolated pip,
its own cache warm), ``tar -czf`` the tree; also with zstd -10 (builder's level) for sizes.

The interpreter archive is made once, untimed, with ``builder runtime import "$(pyenv prefix
3.11.7)"`` unless ``--python-from ARCHIVE`` is given.

    python bench/bench_build.py [--repeats 3] [--python-from ARCHIVE] [RECIPE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from _common import PYPI, ROOT, isolated_env, med, mib, ratio, secs, table, timed, tool, tree_size

NAIVE = "naive: extract + pip install + tar -czf"
ZSTD = "naive, tar with zstd -10 instead of gzip"


@dataclass
class Timings:
    runs: dict[str, list[float]] = field(default_factory=dict)

    def add(self, label: str, seconds: float) -> None:
        self.runs.setdefault(label, []).append(seconds)


class BuildBench:
    def __init__(self, recipe: Path, archive: Path, work: Path) -> None:
        data = tomllib.loads(recipe.read_text(encoding="utf-8"))
        self.recipe, self.archive, self.work = recipe, archive, work
        self.triple = f"{platform.machine()}-unknown-linux-gnu"
        self.lock = ROOT / "lockfiles" / data["app"]["name"] / f"{self.triple}.txt"
        if not self.lock.exists():
            raise SystemExit(f"error: no lock for this machine: {self.lock}")
        self.env = isolated_env(BUILDER_CACHE_DIR=str(work / "builder-cache"))
        self.pip_env = isolated_env(PIP_CACHE_DIR=str(work / "pip-cache"))
        self.times = Timings()

    def builder(self, out: Path) -> tuple[float, Path, str]:
        seconds, proc = timed([tool("builder"), "build", str(self.recipe), "--python-from",
                               str(self.archive), "--out", str(out)], env=self.env)
        return seconds, Path(proc.stdout.strip().splitlines()[-1]), proc.stderr

    def naive(self, tree: Path) -> dict[str, float]:
        """Extract, install, archive; the seconds of each step."""
        tree.mkdir(parents=True)
        steps: dict[str, float] = {}
        steps["extract"], _ = timed(["tar", "-xzf", str(self.archive), "-C", str(tree)],
                                    env=self.pip_env)
        steps["pip install"], _ = timed(
            [str(tree / "python/bin/python3"), "-m", "pip", "--isolated", "install", "--no-deps",
             "--require-hashes", "--no-warn-script-location", "--disable-pip-version-check",
             f"--index-url={PYPI}", "-r", str(self.lock)], env=self.pip_env)
        steps["tar -czf"], _ = timed(["tar", "-czf", str(tree.with_suffix(".tar.gz")), "-C",
                                      str(tree), "python"], env=self.pip_env)
        steps["tar zstd -10"], _ = timed(["tar", "-I", "zstd -10 -T0", "-cf",
                                          str(tree.with_suffix(".tar.zst")), "-C", str(tree),
                                          "python"], env=self.pip_env)
        return steps

    def run(self, repeats: int) -> tuple[Path, Path]:
        """Time every variant ``repeats`` times, side by side; the last bundle and naive tree."""
        log("priming builder's wheel cache and pip's cache (untimed)")
        self.builder(self.work / "prime-out")
        self.naive(self.work / "prime-naive")
        bundle = tree = Path("unset")
        for i in range(repeats):
            if i:  # keep only the last run's outputs, for the sizes
                shutil.rmtree(bundle.parent)
                shutil.rmtree(tree)
                tree.with_suffix(".tar.gz").unlink()
                tree.with_suffix(".tar.zst").unlink()
            seconds, bundle, _ = self.builder(self.work / f"out-{i}")
            self.times.add("builder build (fresh --out, wheel cache warm)", seconds)
            seconds, again, stderr = self.builder(self.work / f"out-{i}")
            if again != bundle or "up to date" not in stderr:
                raise SystemExit("error: the rebuild was not a cache hit")
            self.times.add("builder build again (bundle cache hit)", seconds)
            tree = self.work / f"naive-{i}"
            steps = self.naive(tree)
            common = steps["extract"] + steps["pip install"]
            self.times.add(NAIVE, common + steps["tar -czf"])
            for step in ("extract", "pip install", "tar -czf"):
                self.times.add(f"  {step}", steps[step])
            self.times.add(ZSTD, common + steps["tar zstd -10"])
            log(f"repeat {i + 1}/{repeats}: done")
        return bundle, tree

    def report(self, bundle: Path, tree: Path) -> str:
        sizes = {"builder build (fresh --out, wheel cache warm)": bundle.stat().st_size,
                 "builder build again (bundle cache hit)": bundle.stat().st_size,
                 NAIVE: tree.with_suffix(".tar.gz").stat().st_size,
                 ZSTD: tree.with_suffix(".tar.zst").stat().st_size}
        base = med(self.times.runs[NAIVE])
        rows = []
        for label, runs in self.times.runs.items():
            size = sizes.get(label)
            rows.append([label, secs(med(runs)), secs(min(runs)), ratio(med(runs), base),
                         mib(size) if size else "", ratio(size, sizes[NAIVE]) if size else ""])
        timing = table(["variant", "median s", "min s", "vs naive", "archive", "vs naive"],
                       rows)
        unpacked = self.work / "unpacked"
        unpacked.mkdir()
        subprocess.run(["tar", "--zstd", "-xf", str(bundle), "-C", str(unpacked)], check=True)
        trees = {"builder bundle, unpacked (manifest.json + app/)": tree_size(unpacked),
                 "naive tree (python/)": tree_size(tree)}
        naive_bytes = trees["naive tree (python/)"][0]
        size_rows = [[label, mib(total), str(files), ratio(total, naive_bytes)]
                     for label, (total, files) in trees.items()]
        return timing + "\n\n" + table(["tree", "size", "files", "vs naive"], size_rows)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def import_runtime(out: Path, version: str) -> Path:
    prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True,
                            check=True).stdout.strip()
    log(f"builder runtime import {prefix} (untimed set-up)")
    _, proc = timed([tool("builder"), "runtime", "import", prefix, "--out", str(out)],
                    env=isolated_env())
    return Path(proc.stdout.splitlines()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path, nargs="?", default=ROOT / "recipes/jupyter-6.toml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python-from", type=Path, metavar="ARCHIVE",
                        help="interpreter archive (default: import pyenv's --pyenv-version)")
    parser.add_argument("--pyenv-version", default="3.11.7")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        work = Path(tmp)
        archive = (args.python_from.resolve() if args.python_from
                   else import_runtime(work / "runtime", args.pyenv_version))
        bench = BuildBench(args.recipe.resolve(), archive, work)
        bundle, tree = bench.run(args.repeats)
        print(f"# build: {args.recipe.name} for {bench.triple}, {datetime.date.today()}, "
              f"{len(os.sched_getaffinity(0))} cores, repeats={args.repeats}, "
              f"interpreter {archive.name}")
        print("# ratio = median / naive median (time) or size / naive size; > 1 is slower or "
              "bigger; indented rows are the naive steps\n")
        print(bench.report(bundle, tree))
    return 0


if __name__ == "__main__":
    sys.exit(main())
