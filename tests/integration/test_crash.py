"""Interrupted builds: `builder build` killed mid-build (SIGKILL, SIGTERM) leaves nothing that
outlives the next run, and no process of its own behind.

A build step (or a check command) that sleeps holds the build at a known point (the staging
tree exists, a child process runs in its sandbox); the test finds that child by a unique word in
its command line. Each build has a TMPDIR of its own, which must be empty once the next run is
done: the sandboxes' HOMEs live in the claimed staging directory, never in TMPDIR."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit
from builder_run import ROOT, run_builder

pytestmark = pytest.mark.integration

BOUND = 300.0  # seconds a build may take to reach its build step (interpreter, install)


def recipe(directory: Path, *, marker: str | None, held_in: str = "build") -> Path:
    """recipes/tiny.toml in ``directory``; with ``marker``, a build step (``held_in="build"``)
    or a check command (``"checks"``) that sleeps."""
    directory.mkdir(parents=True, exist_ok=True)
    document = tomlkit.parse((ROOT / "recipes" / "tiny.toml").read_text())
    if marker is not None:
        sleeper = [["python3", "-c", "import time; time.sleep(600)", marker]]
        document[held_in] = {"steps": sleeper} if held_in == "build" else {"commands": sleeper}
    path = directory / "tiny.toml"
    path.write_text(tomlkit.dumps(document))
    return path


def start_build(path: Path, out: Path, *, cache: Path, runtime: Path,
                tmpdir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SOURCE_DATE_EPOCH", "BUILDER_PBS_MIRROR")}
    env["BUILDER_CACHE_DIR"] = str(cache)
    env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen(
        [sys.executable, "-m", "builder", "build", str(path), "--lock-dir",
         str(ROOT / "lockfiles" / "tiny"), "--python-from", str(runtime), "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def processes_with(word: str) -> list[int]:
    """Pids of the processes whose command line contains ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if word.encode() in cmdline:
                found.append(int(entry.name))
    return found


def wait_for(predicate: object, *, bound: float, what: str) -> None:
    deadline = time.monotonic() + bound
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound:.0f} s")
        time.sleep(0.2)


def stage_of(cache: Path, pid: int) -> Path:
    """The staging directory the build with ``pid`` owns (its owner file names the pid)."""
    owned = [p for p in (cache / "stage").glob("*.owner")
             if p.read_text(errors="replace") == f"builder {pid}\n"]
    assert len(owned) == 1, owned
    return owned[0].with_name(owned[0].name.removesuffix(".owner"))


def staged(stage: Path) -> bool:
    """The staged bundle is there (renamed to bundle.checking while the checks run)."""
    return (stage / "bundle").is_dir() or (stage / "bundle.checking").is_dir()


@pytest.fixture(params=["build", "checks"])
def held_build(request: pytest.FixtureRequest, tmp_path: Path, builder_cache: Path,
               runtime_archive: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """A build held in its sleeping step or check command: (the builder process, the
    sleeper's word, out dir); its TMPDIR is ``tmp_path / "tmp"``. Whatever the test leaves
    running is killed at teardown (processes this test started)."""
    marker = f"crash-test-{uuid.uuid4().hex}"
    out = tmp_path / "out"
    (tmp_path / "tmp").mkdir()
    proc = start_build(recipe(tmp_path / "recipes", marker=marker, held_in=request.param), out,
                       cache=builder_cache, runtime=runtime_archive, tmpdir=tmp_path / "tmp")
    try:
        wait_for(lambda: processes_with(marker) or proc.poll() is not None, bound=BOUND,
                 what="the build step to start")
        assert proc.poll() is None, proc.communicate()[1]
        yield proc, marker, out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_stops_the_build_cleanly(
        held_build: tuple[subprocess.Popen[str], str, Path], builder_cache: Path) -> None:
    proc, marker, out = held_build
    stage = stage_of(builder_cache, proc.pid)
    assert staged(stage)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.endswith("terminated\n") and "Traceback" not in err
    assert not stage.exists() and not Path(f"{stage}.owner").exists()
    assert processes_with(marker) == []  # the step's process group was killed
    assert processes_with(str(stage)) == []
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_what_a_sigkilled_build_leaves_is_collected_by_the_next(
        held_build: tuple[subprocess.Popen[str], str, Path], builder_cache: Path,
        tmp_path: Path, runtime_archive: Path) -> None:
    proc, marker, out = held_build
    stage = stage_of(builder_cache, proc.pid)
    homes = list(stage.glob("**/builder-home-*"))
    assert homes, sorted(p.name for p in stage.iterdir())  # the sleeper's sandbox HOME
    proc.kill()
    proc.communicate(timeout=60)
    # no cleanup of ours ran: the staging tree stays, but the kernel ended the step (its
    # parent died), so no process is left behind
    assert staged(stage) and Path(f"{stage}.owner").is_file()
    wait_for(lambda: not processes_with(marker), bound=10, what="the step to die with builder")

    again = run_builder("build", str(recipe(tmp_path / "again", marker=None)), "--lock-dir",
                        str(ROOT / "lockfiles" / "tiny"), "--python-from", str(runtime_archive),
                        "--out", str(out), cache=builder_cache,
                        env={"TMPDIR": str(tmp_path / "tmp")})
    assert again.returncode == 0, again.stderr
    assert f"leftover(s) of interrupted builds in {builder_cache / 'stage'}" in again.stderr
    assert not stage.exists() and not Path(f"{stage}.owner").exists()
    assert [p.suffix for p in out.iterdir() if p.name.startswith(".")] == []
    assert not any(home.exists() for home in homes)
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing was made outside the stage


def test_compileall_and_its_workers_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    """The compiler relocation runs (``-j 0``: a pool of workers) does not outlive builder."""
    marker = f"crash-test-{uuid.uuid4().hex}"
    sources = tmp_path / marker
    sources.mkdir()
    for i in range(3000):
        (sources / f"m{i}.py").write_text(f"x = {i}\n")
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, pathlib\n"
         "from builder.relocate.pyc import CompileallCompiler\n"
         "root = pathlib.Path(sys.argv[1])\n"
         "CompileallCompiler(python=pathlib.Path(sys.executable)).compile(\n"
         "    app_root=root, dirs=(root,))\n",
         str(sources)], cwd=ROOT)
    try:
        # builder's stand-in, compileall and at least one worker (all name the sources)
        wait_for(lambda: len(processes_with(str(sources))) >= 3, bound=60,
                 what="compileall's workers to start")
        parent.kill()
        parent.wait(timeout=30)
        wait_for(lambda: not processes_with(str(sources)), bound=10,
                 what="compileall and its workers to die with their parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in processes_with(str(sources)):
            os.kill(pid, signal.SIGKILL)
