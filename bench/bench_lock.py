"""Lock time of ``builder lock RECIPE`` against pip-compile and uv pip compile.

builder resolves every target of the recipe (x86_64 and aarch64); its per-target share is read
from its log. The baselines get the recipe's requirements in a requirements.in:
``pip-compile --generate-hashes`` (resolves for the host) and ``uv pip compile --generate-hashes
--python-version X.Y --python-platform TRIPLE`` once per target. Every tool runs isolated from
the host's pip/uv configuration against PyPI and writes its lock into a temporary directory.

warm: each tool's own cache (in a temporary directory) primed by one untimed run.
cold: a fresh, empty cache directory for every run.

    python bench/bench_lock.py [--repeats 3] [--modes warm,cold] [RECIPE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import PYPI, ROOT, differ, isolated_env, med, pins, ratio, secs, table, timed, tool

TRIPLES = ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")
_LOCKED = re.compile(r"locked (\S+): \d+ packages.*\(([\d.]+)s\)")
BUILDER, PIPC = "builder lock", "pip-compile (host)"
UV2 = "uv pip compile, both"

# label -> seconds and the lock file written (None: a sum of other rows)
Measurement = dict[str, tuple[float, Path | None]]


def arch(triple: str) -> str:
    return triple.split("-", 1)[0]


def per_target(name: str, triple: str) -> str:
    return f"{name} [{arch(triple)}]"


@dataclass
class Row:
    label: str
    targets: str
    pip_base: str | None  # the pip-compile row to divide by (None: not like for like)
    uv_base: str  # the uv row covering the same targets
    reference: str | None = None  # builder row whose pins these are compared with
    parts: tuple[str, ...] = ()  # rows whose lock files this row sums up
    lock: Path | None = None
    times: dict[str, list[float]] = field(default_factory=lambda: {"warm": [], "cold": []})


class LockBench:
    def __init__(self, recipe: Path, work: Path, uv_like_builder: str | None) -> None:
        data = tomllib.loads(recipe.read_text(encoding="utf-8"))
        self.recipe, self.work = recipe, work
        self.python = uv_like_builder or str(data["runtime"]["python"])
        self.uv_extra = [] if uv_like_builder is None else ["--only-binary=:all:"]
        floor = str(data["targets"]["glibc_floor"]).replace(".", "_")
        self.uv_platform = {t: f"{arch(t)}-manylinux_{floor}" if uv_like_builder else t
                            for t in TRIPLES}
        self.triples = tuple(t for t in TRIPLES if t in data["targets"]["triples"])
        self.req_in = work / "requirements.in"
        self.req_in.write_text("\n".join(data["packages"]["requirements"]) + "\n",
                               encoding="utf-8")
        self.tools: dict[str, Callable[[Path, Path], Measurement]] = {
            "builder": self.builder, "pip-compile": self.pip_compile, "uv": self.uv}
        rows = [Row(BUILDER, "+".join(map(arch, self.triples)), None, UV2,
                    parts=tuple(per_target(BUILDER, t) for t in self.triples))]
        rows += [Row(per_target(BUILDER, t), arch(t), PIPC, per_target("uv pip compile", t))
                 for t in self.triples]
        rows.append(Row(PIPC, f"host ({platform.machine()})", PIPC,
                        per_target("uv pip compile", f"{platform.machine()}-"),
                        reference=per_target(BUILDER, f"{platform.machine()}-")))
        rows += [Row(per_target("uv pip compile", t), arch(t), PIPC,
                     per_target("uv pip compile", t), reference=per_target(BUILDER, t))
                 for t in self.triples]
        rows.append(Row(UV2, "+".join(map(arch, self.triples)), None, UV2,
                        parts=tuple(per_target("uv pip compile", t) for t in self.triples)))
        self.rows = {row.label: row for row in rows}

    def builder(self, cache: Path, out: Path) -> Measurement:
        seconds, proc = timed([tool("builder"), "lock", str(self.recipe), "--lock-dir", str(out)],
                              env=isolated_env(BUILDER_CACHE_DIR=str(cache)))
        result: Measurement = {BUILDER: (seconds, None)}
        for triple, share in _LOCKED.findall(proc.stderr):
            result[per_target(BUILDER, triple)] = (float(share), out / f"{triple}.txt")
        return result

    def pip_compile(self, cache: Path, out: Path) -> Measurement:
        lock = out / "requirements.txt"
        seconds, _ = timed([tool("pip-compile"), "--no-config", "--generate-hashes",
                            "--strip-extras", "--quiet", f"--index-url={PYPI}",
                            f"--cache-dir={cache / 'pip-tools'}", f"--output-file={lock}",
                            str(self.req_in)],
                           env=isolated_env(PIP_CACHE_DIR=str(cache / "pip")), cwd=self.work)
        return {PIPC: (seconds, lock)}

    def uv(self, cache: Path, out: Path) -> Measurement:
        result: Measurement = {}
        for triple in self.triples:
            lock = out / f"{triple}.txt"
            seconds, _ = timed([tool("uv"), "pip", "compile", "--no-config", "--generate-hashes",
                                "--quiet", *self.uv_extra, f"--python-version={self.python}",
                                f"--python-platform={self.uv_platform[triple]}",
                                f"--index-url={PYPI}",
                                f"--cache-dir={cache}", f"--output-file={lock}",
                                str(self.req_in)],
                               env=isolated_env(UV_CACHE_DIR=str(cache)), cwd=self.work)
            result[per_target("uv pip compile", triple)] = (seconds, lock)
        result[UV2] = (sum(s for s, _ in result.values()), None)
        return result

    def run(self, modes: list[str], repeats: int) -> None:
        caches = {name: self.work / "warm-cache" / name for name in self.tools}
        if "warm" in modes:
            for name, fn in self.tools.items():
                print(f"priming the {name} cache (untimed)", file=sys.stderr, flush=True)
                fn(caches[name], Path(tempfile.mkdtemp(dir=self.work)))
        for mode in modes:
            for i in range(repeats):
                for name, fn in self.tools.items():  # side by side, in turn
                    cache = caches[name] if mode == "warm" else Path(
                        tempfile.mkdtemp(prefix="cold-cache-", dir=self.work))
                    out = Path(tempfile.mkdtemp(prefix="lock-", dir=self.work))
                    for label, (seconds, lock) in fn(cache, out).items():
                        self.rows[label].times[mode].append(seconds)
                        if lock is not None:
                            shutil.copyfile(lock, self.work / f"{label}.txt")
                            self.rows[label].lock = self.work / f"{label}.txt"
                    print(f"{mode} {i + 1}/{repeats} {name}: done", file=sys.stderr, flush=True)
                    shutil.rmtree(out)
                    if mode == "cold":
                        shutil.rmtree(cache)

    def differences(self, row: Row) -> list[str] | None:
        reference = self.rows.get(row.reference or "")
        if reference is None or reference.lock is None or row.lock is None:
            return None
        return differ(pins(row.lock)[0], pins(reference.lock)[0])

    def report(self, mode: str) -> str:
        headers = ["tool", "targets", "packages", "hashes", "pins ≠ builder", "median s",
                   "min s", "vs pip-compile", "vs uv, same targets"]
        body = []
        for row in self.rows.values():
            times = row.times[mode]
            locks = [self.rows[p].lock for p in row.parts] if row.parts else [row.lock]
            counted = [pins(lock) for lock in locks if lock is not None]
            packages = " + ".join(str(len(found)) for found, _ in counted)
            hashes = sum(n for _, n in counted)
            diff = self.differences(row)
            mine = med(times) if times else None
            base = self.rows[row.pip_base].times[mode] if row.pip_base else []
            uv = self.rows[row.uv_base].times[mode] if row.uv_base in self.rows else []
            body.append([row.label, row.targets, packages, str(hashes),
                         "—" if diff is None else str(len(diff)), secs(mine),
                         secs(min(times) if times else None),
                         ratio(mine, med(base) if base else None),
                         ratio(mine, med(uv) if uv else None)])
        return table(headers, body)


def version(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=isolated_env())
    return (proc.stdout or proc.stderr).strip().splitlines()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path, nargs="?", default=ROOT / "recipes/jupyter-6.toml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="warm,cold", help="comma-separated: warm, cold")
    parser.add_argument("--uv-like-builder", metavar="X.Y.Z",
                        help="give uv builder's constraints: --only-binary=:all:, "
                        "--python-version X.Y.Z, --python-platform ARCH-manylinux_<glibc floor>")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - {"warm", "cold"} or args.repeats < 1:
        parser.error("--modes takes warm and/or cold; --repeats must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-lock-") as tmp:
        bench = LockBench(args.recipe.resolve(), Path(tmp), args.uv_like_builder)
        bench.run(modes, args.repeats)
        print(f"# lock: {args.recipe.name}, {datetime.date.today()}, {platform.machine()}, "
              f"{len(os.sched_getaffinity(0))} cores, repeats={args.repeats}")
        print(f"# {version([tool('builder'), '--version'])}; "
              f"{version([tool('pip-compile'), '--version'])}; "
              f"pip {version([sys.executable, '-m', 'pip', '--version']).split()[1]}; "
              f"{version([tool('uv'), '--version'])}"
              + (f"; uv like builder: {args.uv_like_builder}" if args.uv_like_builder else ""))
        for mode in modes:
            print(f"\n## {mode} cache (ratio = median / baseline median; > 1 is slower)\n")
            print(bench.report(mode))
        print("\npins ≠ builder (name this-tool/builder, same target):")
        for row in bench.rows.values():
            if (diff := bench.differences(row)) is not None:
                print(f"- {row.label}: {', '.join(diff) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
