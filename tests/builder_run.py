"""What the integration tests share besides fixtures: the repository's root and the CLI run as a
user runs it. A module of its own, not ``conftest``: that name is also tests/unit's conftest, and
which one ``from conftest import`` finds depends on the order pytest loaded them (a run of
tests/unit and tests/integration files together failed at collection)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PBS_RELEASE = "20240107"


def run_builder(*args: str, cache: Path, cwd: Path = ROOT, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, as a user runs it (no SOURCE_DATE_EPOCH, no mirror)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("SOURCE_DATE_EPOCH", "BUILDER_PBS_MIRROR")}
    base["BUILDER_CACHE_DIR"] = str(cache)
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "builder", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, check=False, timeout=900)
