"""The VS Code bundle (recipes/vscode.toml): build time, size before and after trimming, and the
time to the first ``/healthz`` 200.

- **build**: ``builder build recipes/vscode.toml --python-from ARCHIVE --out TMP`` with the
  builder cache warm (wheels, npm's cache, zig's cache of libc++: what a build machine has after
  its first build), then the same command again (the input-addressed cache hit). The stages
  (``npm ci`` of the three locked projects, the native rebuild, trimming + audit) come from the
  build's own log; the baseline is ``npm ci`` alone (fetching the locked tree), i.e. what the
  native build, trimming and packing add to it.
- **size**: the tree before trimming (shipped + what the manifest's trim report says was
  removed, per category), the shipped tree and the ``.tar.zst``.
- **first /healthz 200**: the extracted bundle, started as Backend.AI starts it (the
  service-def's ``bin/launch``, on a fresh ``$HOME``, read-only bind mount when root) against
  ``bin/code-server`` started directly with the same flags the launcher passes (no Python
  launcher: what an image with code-server installed would run); polled every 20 ms.

    python bench/bench_vscode.py [--repeats 5] [--bundle BUNDLE.tar.zst]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, isolated_env, med, mib, ratio, secs, table, timed, tool
from bench_launch import first_200, free_port, log

from builder.fsutil import sha256_file

RECIPE = ROOT / "recipes" / "vscode.toml"
CACHE = ROOT / ".cache" / "test-builder"
_STEP = re.compile(r"^(npm (?:ci|rebuild|run) .*): ([0-9.]+) s$")
_STAGES = re.compile(r"trim\+audit ([0-9.]+) s")


def runtime_archive(work: Path, version: str) -> str:
    prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True,
                            check=True).stdout.strip()
    _, proc = timed([tool("builder"), "runtime", "import", prefix, "--out", str(work / "rt")],
                    env=isolated_env(BUILDER_CACHE_DIR=str(CACHE)))
    return proc.stdout.splitlines()[0]


def build(archive: str, out: Path) -> tuple[float, str, Path]:
    start = time.perf_counter()
    proc = subprocess.run([tool("builder"), "build", str(RECIPE), "--python-from", archive,
                           "--out", str(out)], env=isolated_env(BUILDER_CACHE_DIR=str(CACHE)),
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: builder build failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stderr, Path(proc.stdout.strip().splitlines()[-1])


def stages(build_log: str) -> dict[str, float]:
    found = {"npm ci (3 locked projects)": 0.0, "native rebuild (zig)": 0.0,
             "project scripts": 0.0, "trim + audit": 0.0}
    for line in build_log.splitlines():
        if match := _STEP.match(line.strip()):
            what, seconds = match.group(1), float(match.group(2))
            key = ("npm ci (3 locked projects)" if what.startswith("npm ci")
                   else "native rebuild (zig)" if what.startswith("npm rebuild")
                   else "project scripts")
            found[key] += seconds
        if match := _STAGES.search(line):
            found["trim + audit"] = float(match.group(1))
    return found


def bench_build(archive: str, work: Path, repeats: int) -> tuple[str, Path]:
    log("priming the builder cache (one untimed build)")
    _, _, bundle = build(archive, work / "dist-prime")
    digests = {sha256_file(bundle)}
    runs, hits, logs = [], [], []
    for i in range(repeats):
        seconds, text, bundle = build(archive, work / f"dist-{i}")
        digests.add(sha256_file(bundle))
        runs.append(seconds)
        logs.append(stages(text))
        hits.append(build(archive, work / f"dist-{i}")[0])
        log(f"build {i + 1}/{repeats}: {seconds:.1f} s")
    npm_ci = med([s["npm ci (3 locked projects)"] for s in logs])
    rows = [["builder build (warm caches)", secs(med(runs)), secs(min(runs)),
             ratio(med(runs), npm_ci)]]
    rows += [[f"  stage: {stage}", secs(med([s[stage] for s in logs])),
              secs(min(s[stage] for s in logs)), ratio(med([s[stage] for s in logs]), npm_ci)]
             for stage in logs[0]]
    rows.append(["builder build again (cache hit)", secs(med(hits)), secs(min(hits)),
                 ratio(med(hits), npm_ci)])
    same = (f"{repeats + 1} builds, same sha256: "
            + ("yes" if len(digests) == 1 else f"NO ({len(digests)} different)"))
    return table(["build", "median s", "min s", "vs npm ci alone"], rows) + "\n" + same, bundle


def bench_size(bundle: Path) -> str:
    manifest = json.loads(bundle.with_name(bundle.name.removesuffix(".tar.zst") + ".json")
                          .read_text())
    shipped = manifest["sizes"]["unpacked_bytes"]
    trimmed = manifest["node"]["trimmed"]
    before = shipped + sum(trimmed.values())
    rows = [["tree before trimming", mib(before), "1.00x"]]
    rows += [[f"  removed: {category}", mib(size), ratio(size, before)]
             for category, size in sorted(trimmed.items(), key=lambda kv: -kv[1])]
    rows += [["tree shipped (unpacked)", mib(shipped), ratio(shipped, before)],
             ["bundle .tar.zst", mib(bundle.stat().st_size), ratio(bundle.stat().st_size, before)]]
    return table(["size", "MiB", "vs untrimmed"], rows)


def bench_healthz(bundle: Path, work: Path, repeats: int) -> str:
    tree = work / "tree"
    tree.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(bundle), "-C", str(tree)], check=True)
    app = tree / "app"
    root = os.geteuid() == 0
    allow = ["--allow-root"] if root else []
    tmp = work / "tmp"
    tmp.mkdir()

    def env(label: str, i: int) -> dict[str, str]:
        home = work / f"home-{label[:6]}-{i}-{time.monotonic_ns()}"
        home.mkdir()
        return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                "TMPDIR": str(tmp)}

    def launcher(i: int, port: int) -> float:
        command = (f'"{app}/bin/launch" --port {port} --ip 127.0.0.1 --platform-auth '
                   f'{" ".join(allow)}')
        if root and shutil.which("unshare"):
            command = (f'mount --bind "{app}" "{app}" && mount -o remount,bind,ro "{app}" && '
                       f"exec {command}")
            argv = ["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c", command]
        else:
            argv = ["/bin/sh", "-c", f"exec {command}"]
        return first_200(argv, env("launch", i), port, path="/healthz")

    def direct(i: int, port: int) -> float:
        e = env("direct", i)
        data = Path(e["HOME"]) / ".local/share/code-server"
        return first_200([str(app / "bin/code-server"), "--bind-addr", f"127.0.0.1:{port}",
                          "--auth", "none", "--disable-telemetry", "--disable-update-check",
                          "--user-data-dir", str(data), "--extensions-dir",
                          str(data / "extensions"), e["HOME"]], e, port, path="/healthz")

    variants = {"service-def: bin/launch (read-only mount)" if root else "bin/launch": launcher,
                "bin/code-server directly, same flags": direct}
    log("warming the page cache (one untimed start of each variant)")
    for run in variants.values():
        run(-1, free_port())
    runs: dict[str, list[float]] = {label: [] for label in variants}
    for i in range(repeats):
        for label, run in variants.items():
            runs[label].append(run(i, free_port()))
        log(f"healthz {i + 1}/{repeats}: done")
    base = med(runs["bin/code-server directly, same flags"])
    rows = [[label, secs(med(r)), secs(min(r)), secs(max(r)), ratio(med(r), base)]
            for label, r in runs.items()]
    return table(["first /healthz 200", "median s", "min s", "max s", "vs direct"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bundle", type=Path, help="skip the build bench; use this bundle")
    parser.add_argument("--pyenv-version", default="3.11.7")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-vscode-") as tmp:
        work = Path(tmp)
        sections = []
        if args.bundle is None:
            archive = runtime_archive(work, args.pyenv_version)
            build_table, bundle = bench_build(archive, work, args.repeats)
            sections.append(build_table)
        else:
            bundle = args.bundle.resolve()
        sections.append(bench_size(bundle))
        sections.append(bench_healthz(bundle, work, max(args.repeats, 3)))
    print(f"# bench_vscode.py  {datetime.date.today()}  {platform.machine()}, "
          f"{os.cpu_count()} cores, repeats {args.repeats}\n")
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
