"""Helpers shared by the benchmarks: isolated tool environments, timing, tables."""

from __future__ import annotations

import os
import re
import shutil
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPI = "https://pypi.org/simple"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def tool(name: str) -> str:
    """A console script beside the running interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"error: {name} not found beside {sys.executable} or on PATH")
    return found


def isolated_env(**extra: str) -> dict[str, str]:
    """The environment with every host pip/uv setting cut off."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "BUILDER_", "VIRTUAL_ENV", "PYTHON"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_NO_INPUT": "1", "UV_NO_CONFIG": "1"})
    env.update(extra)
    return env


def timed(argv: Sequence[str], *, env: Mapping[str, str],
          cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command, return (wall seconds, process); exit with its stderr if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-20:])
        raise SystemExit(f"error: {' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return seconds, proc


def pins(path: Path) -> tuple[dict[str, str], int]:
    """``name -> version`` pinned in a pip-tools style file, and its number of --hash values."""
    found: dict[str, str] = {}
    hashes = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
        hashes += line.count("--hash=")
    return found, hashes


def differ(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    """``name a-version/b-version`` for every name pinned differently or only on one side."""
    return [f"{name} {a.get(name, '-')}/{b.get(name, '-')}"
            for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.2f}x"


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def tree_size(root: Path) -> tuple[int, int]:
    """(sum of regular file sizes, number of files) under ``root``; links are not followed."""
    total = files = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            st = (Path(folder) / name).lstat()
            files += 1
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total, files


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
