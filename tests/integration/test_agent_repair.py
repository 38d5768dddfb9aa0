"""A real bundle (recipes/jupyter-6.toml) installed, damaged in every way the issue names, named
difference by difference by ``agent verify``, and repaired by ``agent install`` while an observer
watches the entry: it never sees a half entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from builder.bundle.record import RECORD_FILE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STDLIB = "app/python/lib/python3.11"


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder", "agent", *args], capture_output=True,
                          text=True, check=False, timeout=900)


def flip_a_byte(path: Path) -> None:
    """Same size, one bit different, in the middle of the file."""
    with path.open("r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))


def first_symlink(app: Path) -> Path:
    for directory, dirnames, filenames in os.walk(app):
        for name in sorted(dirnames + filenames):
            if (Path(directory) / name).is_symlink():
                return Path(directory) / name
    raise AssertionError("no symlink in the bundle")


def damage(entry: Path) -> dict[str, str]:
    """Every kind of damage from the issue; returns {path: kind of difference expected}."""
    flip_a_byte(entry / STDLIB / "os.py")
    flip_a_byte(entry / "app/python/bin/python3.11")
    (entry / STDLIB / "site-packages/injected.py").write_text("import os; os.system('id')\n")
    (entry / STDLIB / "json/decoder.py").chmod(0o000)
    (entry / STDLIB / "shutil.py").chmod(0o4777)
    (entry / STDLIB / "csv.py").unlink()
    link = first_symlink(entry / "app")
    target = os.readlink(link)
    link.unlink()
    link.symlink_to(target + "-elsewhere")
    return {f"{STDLIB}/os.py": "content", "app/python/bin/python3.11": "content",
            f"{STDLIB}/site-packages/injected.py": "added", f"{STDLIB}/json/decoder.py": "mode",
            f"{STDLIB}/shutil.py": "mode", f"{STDLIB}/csv.py": "removed",
            link.relative_to(entry).as_posix(): "target"}


def test_damaged_entry_is_named_then_repaired_atomically(jupyter_bundle: Path,
                                                          tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    manifest = json.loads(jupyter_bundle.with_name(
        jupyter_bundle.name.removesuffix(".tar.zst") + ".json").read_text())
    assert manifest["record"]["file"] == RECORD_FILE
    installed = agent("install", str(jupyter_bundle), "--store", store)
    assert installed.returncode == 0, installed.stderr
    entry = Path(installed.stdout.strip())
    ok = agent("verify", "jupyter-6", "--store", store)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: jupyter-6"), ok.stdout + ok.stderr

    expected = damage(entry)
    text = agent("verify", "jupyter-6", "--store", store)
    assert text.returncode == 1
    for path in expected:
        assert f"jupyter-6: {path}: " in text.stdout, (path, text.stdout)
    as_json = agent("verify", "jupyter-6", "--store", store, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    found = {d["path"]: d["kind"] for d in report["differences"]}
    assert report["ok"] is False and all(found.get(p) == k for p, k in expected.items()), found

    whole = entry / ".complete"
    seen: list[str] = []
    stop = threading.Event()

    def observe() -> None:  # bounded: until the repair is over
        while not stop.is_set():
            try:
                names = set(os.listdir(entry))
            except FileNotFoundError:
                seen.append("gap")
                continue
            if ".complete" not in names or not whole.exists():
                seen.append(f"half entry: {sorted(names)}")

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    try:
        repaired = agent("install", str(jupyter_bundle), "--store", store, "--json")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert repaired.returncode == 0, repaired.stderr
    assert "repaired jupyter-6" in repaired.stderr
    listed = {d["path"] for d in json.loads(repaired.stdout)["repaired"]}
    assert set(expected) <= listed
    assert [s for s in seen if s != "gap"] == []
    assert seen == []  # renameat2(RENAME_EXCHANGE): not even a moment without the entry

    again = agent("verify", "jupyter-6", "--store", store, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["ok"] is True, again.stdout
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    run = subprocess.run([str(entry / "app/python/bin/python3.11"), "-c",
                          "import csv, os, shutil, json.decoder, injected"],
                         capture_output=True, text=True, check=False, timeout=60)
    assert "No module named 'injected'" in run.stderr  # the injected file is gone, csv is back
