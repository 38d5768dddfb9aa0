"""Which filesystem image: squashfs (what ``build --image squashfs`` writes) against EROFS, of
the same bundle tree, each as the kernel mounts it (loop, read-only).

For each kind: the image's size, the time to make it (once, untimed in the ratios' sense:
both are made twice and must come out byte-identical, which is the reproducibility check),
then in interleaved repeats on a fresh mount each time:

- mount: ``mount -t KIND -o ro,nosuid,nodev,loop`` alone;
- read all: a walk that reads every file of the fresh mount (the whole tree's data, what a
  cold start reads at most);
- first 200: the mount's ``app/bin/launch`` (no Python on ``PATH``) until Jupyter answers 200.

squashfs uses builder's own command line (lz4 high compression, all root, fixed times); EROFS
uses ``mkfs.erofs -zlz4hc -T<time> --all-root -U <fixed uuid> -x-1`` (erofs-utils 1.5 here
offers lz4 and lz4hc only). The page cache is not dropped (a shared machine): each image's
file may be cached by the kernel from the previous repeat, for both alike; a fresh mount
still starts with the file system's own caches empty. Needs root and both kinds in
``/proc/filesystems``.

    python bench/bench_fsimage.py --bundle dist/jupyter-6-*.tar.zst [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import med, mib, ratio, secs, table
from bench_launch import TOKEN, first_200, free_port

from builder.bundle.image import ImageKind, find_tool, mkfs_command, unpack_archive

MTIME = 315532800
EROFS_UUID = "00000000-0000-0000-0000-000000000000"
KINDS = ("squashfs", "erofs")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_image(kind: str, tree: Path, dest: Path) -> float:
    if kind == "squashfs":
        argv = mkfs_command(ImageKind.SQUASHFS, find_tool(ImageKind.SQUASHFS), tree, dest,
                            mtime=MTIME)
    else:
        argv = ["mkfs.erofs", "-zlz4hc", f"-T{MTIME}", "--all-root", f"-U{EROFS_UUID}",
                "-x-1", "--quiet", str(dest), str(tree)]
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_all(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
    return total


class Mounted:
    def __init__(self, kind: str, image: Path, at: Path) -> None:
        self.kind, self.image, self.at = kind, image, at

    def __enter__(self) -> float:
        self.at.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        subprocess.run(["mount", "-t", self.kind, "-o", "ro,nosuid,nodev,loop", str(self.image),
                        str(self.at)], check=True)
        return time.perf_counter() - start

    def __exit__(self, *_exc: object) -> None:
        subprocess.run(["umount", str(self.at)], check=True)
        self.at.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, metavar="ARCHIVE",
                        help="a bundle (.tar.zst), e.g. jupyter-6 built offline")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if os.geteuid() != 0:
        raise SystemExit("error: kernel mounts need root")
    have = Path("/proc/filesystems").read_text()
    missing = [k for k in KINDS if k not in have.split()]
    if missing or shutil.which("mkfs.erofs") is None:
        raise SystemExit(f"error: the kernel lacks {missing} or mkfs.erofs is not installed "
                         "(apt-get install erofs-utils)")
    with tempfile.TemporaryDirectory(prefix="bench-fsimage-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        log(f"unpacking {args.bundle.name}")
        unpack_archive(args.bundle.resolve(), tree)
        images: dict[str, Path] = {}
        made: dict[str, float] = {}
        for kind in KINDS:
            first, second = work / f"a.{kind}", work / f"b.{kind}"
            made[kind] = make_image(kind, tree, first)
            make_image(kind, tree, second)
            if sha256(first) != sha256(second):
                raise SystemExit(f"error: two {kind} images of one tree differ")
            second.unlink()
            images[kind] = first
            log(f"{kind}: {mib(first.stat().st_size)} in {made[kind]:.1f}s, reproducible")
        runs: dict[str, list[float]] = {}

        def add(label: str, value: float) -> None:
            runs.setdefault(label, []).append(value)

        def variant(kind: str, i: int) -> Callable[[], None]:
            def run() -> None:
                at = work / f"mnt-{kind}-{i}"
                with Mounted(kind, images[kind], at) as mounted:
                    add(f"{kind}: mount", mounted)
                    start = time.perf_counter()
                    read_all(at)
                    add(f"{kind}: read every file", time.perf_counter() - start)
                with Mounted(kind, images[kind], at):
                    home = work / f"home-{kind}-{i}"
                    home.mkdir()
                    port = free_port()
                    env = {"PATH": "/nonexistent", "HOME": str(home), "LANG": "C.UTF-8",
                           "TMPDIR": str(home), "JUPYTER_TOKEN": TOKEN,
                           "LAUNCH_IP": "127.0.0.1"}
                    add(f"{kind}: fresh mount, first 200",
                        first_200([str(at / "app" / "bin" / "launch"), "--port", str(port),
                                   "--allow-root"], env, port))
            return run

        log("one untimed round")
        for kind in KINDS:
            variant(kind, -1)()
        runs.clear()
        for i in range(args.repeats):
            for kind in (KINDS if i % 2 == 0 else KINDS[::-1]):
                variant(kind, i)()
            log(f"repeat {i + 1}/{args.repeats}: done")
        print(f"# squashfs vs EROFS of {args.bundle.name} ({mib(args.bundle.stat().st_size)} "
              f"archive), {datetime.date.today()}, {len(os.sched_getaffinity(0))} cores, "
              f"repeats={args.repeats}, interleaved (order alternating); kernel loop mounts")
        print("# ratio = EROFS median / squashfs median; < 1: EROFS is faster or smaller\n")
        rows = [["image size", mib(images["squashfs"].stat().st_size),
                 mib(images["erofs"].stat().st_size),
                 ratio(images["erofs"].stat().st_size, images["squashfs"].stat().st_size)],
                ["make the image (s, once)", secs(made["squashfs"]), secs(made["erofs"]),
                 ratio(made["erofs"], made["squashfs"])]]
        for what in ("mount", "read every file", "fresh mount, first 200"):
            sq, er = med(runs[f"squashfs: {what}"]), med(runs[f"erofs: {what}"])
            rows.append([f"{what} (s, median)", secs(sq), secs(er), ratio(er, sq)])
        print(table(["", "squashfs (lz4hc)", "EROFS (lz4hc)", "EROFS / squashfs"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
