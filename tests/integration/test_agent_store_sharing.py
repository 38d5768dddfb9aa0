"""Two real bundles (jupyter-6 and jupyterlab-4) in one store: every file the second holds with
the same bytes and mode as the first is the first's inode (nothing of it written again), the disk
the second adds is at most its own size less what it shares, a damaged shared file is seen by
both entries' verify and repaired by installing them again, and gc keeps the survivor whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.bundle.record import RECORD_FILE, parse

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder", "agent", *args],
                          capture_output=True, text=True, check=False, timeout=900)


def install(bundle: Path, store: Path) -> Path:
    done = agent("install", str(bundle), "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["path"])


def du(*roots: Path) -> int:
    """Bytes on disk, each inode once (``du`` semantics)."""
    seen: dict[tuple[int, int], int] = {}
    for root in roots:
        for folder, dirs, names in os.walk(root):
            for name in [*dirs, *names, "."]:
                st = os.lstat(os.path.join(folder, name))
                seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


def contents(entry: Path) -> dict[tuple[str, int], str]:
    """(sha256, mode) -> one path of app/ holding it, from the entry's RECORD."""
    items = parse((entry / RECORD_FILE).read_bytes(), where=str(entry))
    return {(i.digest, i.mode): p for p, i in sorted(items.items())
            if i.kind == "f" and p.startswith("app/")}


def test_a_second_app_writes_only_what_is_new(jupyter_bundle: Path, lab_bundle: Path,
                                              tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = install(jupyter_bundle, store)
    before = du(store)
    second = install(lab_bundle, store)
    added = du(store) - before
    alone = du(install(lab_bundle, tmp_path / "alone"))

    mine, theirs = contents(first), contents(second)
    shared = mine.keys() & theirs.keys()
    assert len(shared) > 1000  # the runtime and the common packages
    shared_bytes = 0
    for key in shared:
        a, b = (first / mine[key]).lstat(), (second / theirs[key]).lstat()
        assert a.st_ino == b.st_ino, theirs[key]  # linked, not written again
        shared_bytes += a.st_blocks * 512
    # what the second added: its own files, not the shared ones (give or take the store's own
    # bookkeeping: object shard directories growing a block, its lock, use and name files)
    assert added <= alone - shared_bytes + (1 << 20)
    record = json.loads((second / ".complete").read_text())
    assert record["new_bytes"] <= added
    print(f"\njupyterlab-4 alone {alone / 2**20:.1f} MiB, added to a store holding jupyter-6 "
          f"{added / 2**20:.1f} MiB; two stores {(before + alone) / 2**20:.1f} MiB, one "
          f"{du(store) / 2**20:.1f} MiB ({du(store) / (before + alone):.2f}x)")

    for name in ("jupyter-6", "jupyterlab-4"):
        assert agent("verify", name, "--store", str(store)).returncode == 0
    victim = first / mine[sorted(shared)[0]]
    with victim.open("r+b") as fh:  # a write through one entry's hard link
        fh.write(b"\0")
    for name in ("jupyter-6", "jupyterlab-4"):
        assert agent("verify", name, "--store", str(store)).returncode != 0
    install(jupyter_bundle, store)
    install(lab_bundle, store)
    for name in ("jupyter-6", "jupyterlab-4"):
        assert agent("verify", name, "--store", str(store)).returncode == 0, name

    gc = agent("gc", "--store", str(store), "--max-bytes", str(du(second) + 1), "--json")
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert [e["name"] for e in json.loads(gc.stdout)["evicted"]] == ["jupyter-6"]
    assert agent("verify", "jupyterlab-4", "--store", str(store)).returncode == 0
    assert du(store) < du(second) + (4 << 20)  # what only jupyter-6 held is gone
