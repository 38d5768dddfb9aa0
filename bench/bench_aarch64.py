"""aarch64 on an x86_64 machine: build time of an aarch64 bundle and its first HTTP 200 under qemu.

Side by side, for one recipe (default jupyter-6), caches primed by an untimed build of each:

- build, x86_64: ``builder build`` with pyenv's CPython 3.11.7 imported (the native case);
- build, aarch64 on x86_64: ``builder build --target aarch64-unknown-linux-gnu`` with Debian's
  arm64 python3.11 imported from its pinned .debs unpacked (``runtime import /usr --sysroot
  TREE``, tests/debroot.py); the build steps, sdist builds and checks run the aarch64
  interpreter through qemu-user (binfmt, ``QEMU_LD_PREFIX`` = that tree);
- first HTTP 200: the bundle's service definition in a Python-less minbase root of its own
  architecture (amd64 natively, arm64 under qemu), as uid 1000, read-only, polled every 20 ms.

Needs root (debootstrap, unshare, chroot) and qemu-user-static registered with binfmt_misc (what
``./dev test`` sets up); the roots come from tests/rootfs.py's and tests/debroot.py's cache
(``.cache/rootfs``).

    python bench/bench_aarch64.py [--repeats 3] [RECIPE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, isolated_env, med, ratio, secs, table, timed, tool

sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from debroot import ensure_debroot  # noqa: E402
from rootfs import ensure_rootfs  # noqa: E402
from test_launch import TOKEN, IsolatedRoot, Jupyter, free_port, service_def_command  # noqa: E402

AARCH64 = "aarch64-unknown-linux-gnu"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def builder(*args: str, env: dict[str, str]) -> tuple[float, str]:
    seconds, proc = timed([tool("builder"), *args], env=env)
    return seconds, proc.stdout.strip().splitlines()[0]  # the path (import: then its sha256)


def first_200(archive: Path, root: Path, work: Path) -> float:
    bundle = work / "bundle"
    bundle.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-xf", str(archive), "-C", str(bundle)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)
    name = json.loads((bundle / "manifest.json").read_text())["name"]  # its /opt/apps/<name>
    with IsolatedRoot(root=root, apps={name: bundle}, scratch=work / "mnt") as iso:
        port = free_port()
        start = time.perf_counter()
        started = iso.start(service_def_command(bundle, port),
                            {"JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1"},
                            log=work / "serve.log")
        try:
            Jupyter(port, "/").wait_ready(deadline=300, alive=started.alive)
        except AssertionError as exc:
            raise SystemExit(f"{archive.name} in {root}: {exc}\n{started.output()[-3000:]}"
                             ) from None
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", type=Path, default=ROOT / "recipes/jupyter-6.toml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="a builder cache already warm for both targets (e.g. "
                        ".cache/test-builder after tests/integration/test_aarch64.py): no "
                        "priming builds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-aarch64-"))
    try:
        cache = (args.cache_dir or work / "cache").absolute()
        env = isolated_env(BUILDER_CACHE_DIR=str(cache))
        pyenv = subprocess.run(["pyenv", "prefix", "3.11.7"], capture_output=True, text=True,
                               check=True).stdout.strip()
        _s, x86_runtime = builder("runtime", "import", pyenv, "--out", str(work / "rt-x86"),
                                  env=env)
        python_root = ensure_debroot("arm64", cache_dir=cache)
        _s, arm_runtime = builder("runtime", "import", "/usr", "--sysroot", str(python_root),
                                  "--out", str(work / "rt-arm"), env=env)
        qemu = isolated_env(BUILDER_CACHE_DIR=str(cache),
                            QEMU_LD_PREFIX=str(python_root))
        cases = {"x86_64": ["--python-from", x86_runtime],
                 "aarch64 on x86_64": ["--target", AARCH64, "--python-from", arm_runtime]}
        envs = {"x86_64": env, "aarch64 on x86_64": qemu}
        roots = {"x86_64": ensure_rootfs("bookworm"),
                 "aarch64 on x86_64": ensure_rootfs("bookworm", arch="arm64")}
        builds: dict[str, list[float]] = {k: [] for k in cases}
        serves: dict[str, list[float]] = {k: [] for k in cases}
        for name, extra in cases.items() if args.cache_dir is None else ():
            log(f"{name}: priming the caches (untimed)")
            builder("build", str(args.recipe), *extra, "--out", str(work / f"prime-{name}"),
                    env=envs[name])
        for i in range(args.repeats):
            for name, extra in cases.items():
                seconds, archive = builder("build", str(args.recipe), *extra, "--out",
                                           str(work / f"out-{i}-{name}"), env=envs[name])
                builds[name].append(seconds)
                serves[name].append(first_200(Path(archive), roots[name],
                                              work / f"serve-{i}-{name}".replace(" ", "-")))
            log(f"repeat {i + 1}/{args.repeats} done")
        base_build, base_serve = med(builds["x86_64"]), med(serves["x86_64"])
        rows = []
        for name in cases:
            rows.append([f"{args.recipe.stem} {name}: build", secs(med(builds[name])),
                         secs(min(builds[name])), ratio(med(builds[name]), base_build)])
        for name in cases:
            rows.append([f"{args.recipe.stem} {name}: first HTTP 200", secs(med(serves[name])),
                         secs(min(serves[name])), ratio(med(serves[name]), base_serve)])
        print(f"# bench_aarch64 {datetime.date.today()} {platform.machine()} "
              f"(median of {args.repeats}; ratio vs the native x86_64 row)")
        print(table(["variant", "median s", "min s", "vs x86_64"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
