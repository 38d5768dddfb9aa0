"""Two real bundles (jupyter-6 and jupyterlab-4) compile the same source to the same ``.pyc``
bytes, whatever the app's name (every ``.pyc`` embeds ``/opt/apps/_``): the agent's store holds
the standard library's ``.pyc`` once for both; and a traceback raised by the bundle's own
interpreter from a store entry names the entry's real files, with their lines, never the
root compiled in."""

from __future__ import annotations

import json
import marshal
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STDLIB = Path("app/python/lib/python3.11")
ENV = {"PATH": "/usr/bin:/bin"}


def install(bundle: Path, store: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "builder", "agent", "install", str(bundle),
                           "--store", str(store), "--json"],
                          capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["path"])


def pycs(entry: Path) -> set[Path]:
    return {p.relative_to(entry) for p in (entry / STDLIB).rglob("*.pyc")}


def source_of(pyc: Path) -> Path:
    """``x/__pycache__/m.cpython-311.pyc`` -> ``x/m.py``."""
    return pyc.parent.parent / f"{pyc.name.split('.')[0]}.py"


@pytest.fixture(scope="module")
def entries(jupyter_bundle: Path, lab_bundle: Path,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    store = tmp_path_factory.mktemp("pyc-store") / "store"
    return install(jupyter_bundle, store), install(lab_bundle, store)


def test_two_apps_share_their_stdlib_pyc(entries: tuple[Path, Path]) -> None:
    first, second = entries
    stdlib = {p for p in pycs(first) & pycs(second) if "site-packages" not in p.parts}
    assert len(stdlib) > 500
    for rel in sorted(stdlib):
        a, b = first / rel, second / rel
        assert a.read_bytes() == b.read_bytes(), rel
        assert a.stat().st_ino == b.stat().st_ino, rel  # one file in the store for both
    code = marshal.loads((first / STDLIB / "json" / "__pycache__" /
                          "decoder.cpython-311.pyc").read_bytes()[16:])
    assert code.co_filename == "/opt/apps/_/python/lib/python3.11/json/decoder.py"


def test_packages_with_the_same_source_share_their_pyc(entries: tuple[Path, Path]) -> None:
    """Every .pyc both apps have whose source has the same bytes has the same bytes itself
    (the packages both apps lock at one version: traitlets, tornado, jupyter_client, ...)."""
    first, second = entries
    site = STDLIB / "site-packages"
    both = {p.relative_to(first) for p in (first / site).rglob("*.pyc")
            if (second / p.relative_to(first)).is_file()}
    same_source = [rel for rel in sorted(both)
                   if (first / source_of(rel)).read_bytes()
                   == (second / source_of(rel)).read_bytes()]
    assert len(same_source) > 1000
    differ = [str(rel) for rel in same_source
              if (first / rel).read_bytes() != (second / rel).read_bytes()]
    assert differ == []


@pytest.mark.parametrize(("argv", "stdin", "frames"), [
    (["-m", "base64", "-d"], "a",  # python -m: runpy gets the module's code from its .pyc
     [("base64.py", "main", "func(sys.stdin.buffer, sys.stdout.buffer)"),
      ("base64.py", "decode", "s = binascii.a2b_base64(line)")]),
    (["-c", "import nbformat; nbformat.reads('{', as_version=4)"], "",
     [("site-packages/nbformat/reader.py", "reads", "nb_dict = parse_json(s, **kwargs)"),
      ("json/decoder.py", "raw_decode", "obj, end = self.scan_once(s, idx)")]),
])
def test_a_traceback_names_the_entry_s_files(entries: tuple[Path, Path], argv: list[str],
                                             stdin: str,
                                             frames: list[tuple[str, str, str]]) -> None:
    entry = entries[1]  # jupyterlab-4's entry: its stdlib .pyc are the very inodes of jupyter-6
    python = entry / "app" / "python" / "bin" / "python3.11"
    proc = subprocess.run([str(python), "-I", "-v", *argv], input=stdin, env=ENV, cwd="/",
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]
    root = entry / STDLIB
    assert "/opt/apps/" not in proc.stderr
    traceback = proc.stderr[proc.stderr.index("Traceback (most recent call last):"):]
    for rel, function, line in frames:
        source = root / rel
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
        # -v: the code came from the entry's .pyc (nothing was compiled from source) ...
        assert f"code object from '{pyc}'" in proc.stderr
        # ... and names the entry's source file, whose line linecache found
        frame = re.escape(f'File "{source}", line ') + r"\d+" + re.escape(
            f", in {function}\n    {line}\n")
        assert re.search(frame, traceback), (rel, function, traceback)
