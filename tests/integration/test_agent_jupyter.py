"""``agent check`` on the real jupyter-6 bundle, proven by running its Python in minbase roots:
yes on bookworm (glibc 2.36), no with numbers on bullseye (glibc 2.31) whenever the bundle's
floor is higher, and the bullseye run fails exactly as the verdict says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rootfs import ensure_rootfs
from test_agent import run_in_root

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder", "agent", *args],
                          capture_output=True, text=True, check=False, timeout=600)


def test_check_jupyter_against_bookworm_and_bullseye(jupyter_bundle: Path,
                                                     tmp_path: Path) -> None:
    bookworm, bullseye = ensure_rootfs("bookworm"), ensure_rootfs("bullseye")
    store = str(tmp_path / "store")
    installed = agent("install", str(jupyter_bundle), "--store", store, "--json")
    assert installed.returncode == 0, installed.stderr
    entry = Path(json.loads(installed.stdout)["path"])
    manifest = json.loads((entry / "manifest.json").read_text())
    floor, culprit = manifest["glibc_floor"], manifest["glibc_floor_file"]
    floor_tuple = tuple(int(p) for p in floor.split("."))
    assert agent("verify", "jupyter-6", "--store", store).returncode == 0
    ssl = ["/opt/apps/jupyter-6/python/bin/python3", "-c", "import ssl; print('ok')"]

    yes = agent("check", "jupyter-6", "--store", store, "--rootfs", str(bookworm), "--json")
    verdict = json.loads(yes.stdout)
    assert yes.returncode == 0 and verdict["verdict"] == "compatible", yes.stdout
    assert verdict["image"]["libc_version"] == "2.36"
    ran = run_in_root(bookworm, entry, "jupyter-6", ssl)
    assert ran.returncode == 0 and ran.stdout == "ok\n", ran.stderr

    no = agent("check", str(jupyter_bundle), "--rootfs", str(bullseye))
    ran = run_in_root(bullseye, entry, "jupyter-6", ssl)
    if floor_tuple > (2, 31):
        assert no.returncode == 3, no.stdout
        assert f"needs glibc {floor} ({culprit}), image has 2.31" in no.stdout
        assert ran.returncode != 0
        assert "version `GLIBC_2.3" in ran.stderr and "not found" in ran.stderr
    else:  # a bundle built on an older floor fits bullseye: the run must agree
        assert no.returncode == 0, no.stdout
        assert ran.returncode == 0, ran.stderr
