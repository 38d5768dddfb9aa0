"""The launcher's code-server mode (launcher_codeserver, shipped as share/launch/codeserver.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.launch import launcher as rt
from builder.launch import launcher_codeserver as cs
from builder.launch.plan import launcher_source

LAUNCH = {"name": "vscode", "version": "4.139.1", "kind": "code-server", "port": 8080,
          "env": {}, "server": {"entry": "bin/code-server", "python_script": False, "args": []}}


def parse(*argv: str, env: dict[str, str] | None = None) -> object:
    return cs.parse_args(list(argv), LAUNCH, env or {})


def test_address_options_and_what_goes_to_code_server() -> None:
    args = cs.parse_args(["--folder", "/w", "--", "--log", "debug"], LAUNCH,
                         {"LAUNCH_PORT": "9000"})
    assert (args.ip, args.port, args.folder, args.extra) == ("0.0.0.0", 9000, "/w",
                                                             ["--log", "debug"])
    args = cs.parse_args(["--port", "1", "--ip", "::", "--notebook-dir", "/n", "--platform-auth",
                          "--bind-addr", "127.0.0.1:8443"], LAUNCH, {})
    assert (args.ip, args.port, args.folder, args.platform_auth) == ("127.0.0.1", 8443, "/n",
                                                                     True)
    assert cs.join_bind_addr("::", 8080) == "[::]:8080"
    assert cs.split_bind_addr("[::1]:80") == ("[::1]", 80)


@pytest.mark.parametrize(("argv", "message"), [
    (["--bind-addr", "0.0.0.0"], "--bind-addr '0.0.0.0' is not HOST:PORT (e.g. 0.0.0.0:8080)"),
    (["--bind-addr", "h:70000"], "--bind-addr 'h:70000' is not HOST:PORT"),
    (["--bind-addr", ":::80"], "write an IPv6 address in brackets, e.g. [::]:8080"),
    (["--port", "0"], "--port '0' is not a TCP port (a number from 1 to 65535)"),
    (["--port", "x"], "--port 'x' is not a TCP port"),
    (["--ip", "a b"], "--ip 'a b' is not an IP address or host name"),
    (["--auth", "token"], "argument --auth: invalid choice: 'token'"),
    (["--base-url", "/x"], "unrecognized arguments: --base-url /x"),
])
def test_bad_options_are_refused_configurations(argv: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 78 (EX_CONFIG), not argparse's 2: s6's finish script does not restart it."""
    with pytest.raises(SystemExit) as info:
        cs.parse_args(argv, LAUNCH, {})
    assert info.value.code == cs.EXIT_CONFIG == 78
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("env", "message"), [
    ({"LAUNCH_PORT": "notaport"}, "$LAUNCH_PORT 'notaport' is not a TCP port"),
    ({"LAUNCH_PORT": "65536"}, "$LAUNCH_PORT '65536' is not a TCP port"),
    ({"LAUNCH_IP": "0.0.0.0:80"}, "$LAUNCH_IP '0.0.0.0:80' is not an IP address or host name"),
])
def test_bad_variables_are_refused_configurations(env: dict[str, str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cs.parse_args([], LAUNCH, env)
    assert info.value.code == 78
    assert message in capsys.readouterr().err
    args = cs.parse_args(["--port", "9000", "--ip", "::"], LAUNCH, env)
    assert (args.port, args.ip) == (9000, "::"), "the options override the variables"


@pytest.mark.parametrize(("requested", "env", "expected"), [
    (None, {}, "none"),
    (None, {"PASSWORD": "p"}, "password"),
    (None, {"HASHED_PASSWORD": "$argon2i$..."}, "password"),
    (None, {"PASSWORD": ""}, "none"),
    ("none", {"PASSWORD": "p"}, "none"),
    ("password", {"PASSWORD": "p"}, "password"),
])
def test_auth_follows_the_option_then_the_password(requested: str | None, env: dict[str, str],
                                                    expected: str) -> None:
    assert cs.choose_auth(requested, env) == expected


def test_a_password_mode_without_a_password_is_refused() -> None:
    with pytest.raises(cs.Refused, match=r"--auth password needs the password in \$PASSWORD "
                       r"\(or an argon2 hash in \$HASHED_PASSWORD\)"):
        cs.choose_auth("password", {"PASSWORD": ""})


def test_the_configuration_is_yaml_with_quoted_values() -> None:
    text = cs.config_text(bind_addr="[::]:8080", auth="none", title="vscode 1")
    assert text.splitlines()[2:] == ['bind-addr: "[::]:8080"', 'auth: "none"', "cert: false"]
    assert "password" not in text.split("\n", 2)[2]


def test_the_server_gets_the_images_environment_without_what_breaks_it(tmp_path: Path) -> None:
    writable = tmp_path / "data"
    writable.mkdir()
    image = {"PATH": "/usr/bin", "PYTHONPATH": "/p", "VIRTUAL_ENV": "/venv",
             "LD_LIBRARY_PATH": "/cuda/lib", "NODE_OPTIONS": "--junk", "NODE_PATH": "/n",
             "PORT": "1", "CODE_SERVER_HOST": "h", "VSCODE_IPC_HOOK_CLI": "/s.sock",
             "CODE_SERVER_PARENT_PID": "1", "XDG_DATA_HOME": str(writable),
             "XDG_CONFIG_HOME": "/nonexistent/config", "XDG_RUNTIME_DIR": str(tmp_path / "nope"),
             "XDG_CACHE_HOME": "relative", "HOME": "/ro"}
    env = cs.server_environment(image, home="/tmp/h", recipe_env={"A": "1"})
    assert env == {"PATH": "/usr/bin", "PYTHONPATH": "/p", "VIRTUAL_ENV": "/venv",
                   "LD_LIBRARY_PATH": "/cuda/lib", "XDG_DATA_HOME": str(writable),
                   "HOME": "/tmp/h", "A": "1"}
    assert cs.state_dirs(env, "/tmp/h") == (f"{writable}/code-server",
                                            f"{writable}/code-server/extensions")
    assert cs.state_dirs({}, "/tmp/h") == ("/tmp/h/.local/share/code-server",
                                           "/tmp/h/.local/share/code-server/extensions")


def test_the_command_runs_the_bundles_code_server_on_its_own_state(tmp_path: Path) -> None:
    args = cs.parse_args(["--ip", "127.0.0.1", "--", "--log", "debug"], LAUNCH, {})
    launch = {**LAUNCH, "server": {**LAUNCH["server"], "args": ["--app-name={port}"]}}  # type: ignore[dict-item]
    plan = cs.plan(launch, args, {"HOME": "/h"}, app_root="/opt/apps/vscode", home="/h",
                   run=tmp_path, python="/py")
    assert plan.argv == [
        "/opt/apps/vscode/bin/code-server", "--app-name=8080", "--config",
        str(tmp_path / "code-server.yaml"), "--user-data-dir", "/h/.local/share/code-server",
        "--extensions-dir", "/h/.local/share/code-server/extensions", "--disable-telemetry",
        "--disable-update-check", "--disable-getting-started-override", "--log", "debug", "/h"]
    assert (plan.bind_addr, plan.auth, plan.root_dir) == ("127.0.0.1:8080", "none", "/h")
    assert plan.env["HOME"] == "/h"


def launch_dir(tmp_path: Path) -> Path:
    """A bundle's share/launch as plan_launch writes it, with a fake bin/code-server."""
    app = tmp_path / "app"
    here = app / "share" / "launch"
    here.mkdir(parents=True)
    (here / "launch.py").write_bytes(launcher_source())
    (here / rt.CODE_SERVER_MODULE).write_bytes(Path(cs.__file__).read_bytes())
    (here / "launch.json").write_text(json.dumps(LAUNCH))
    (app / "bin").mkdir()
    (app / "bin/code-server").write_text("#!/bin/sh\nexit 0\n")
    return here


def test_launch_py_loads_the_code_server_mode(tmp_path: Path) -> None:
    here = launch_dir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TMPDIR": str(tmp_path),
           "NODE_OPTIONS": "--junk", "PYTHONPATH": "/p"}
    proc = subprocess.run([sys.executable, "-I", str(here / "launch.py"), "--dry-run",
                           "--allow-root", "--ip", "127.0.0.1", "--port", "9999"],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["argv"][0] == str(tmp_path / "app/bin/code-server")
    assert out["argv"][-1] == str(home)
    assert out["bind_addr"] == "127.0.0.1:9999" and out["auth"] == "none"
    assert "NODE_OPTIONS" not in out["env"] and out["env"]["PYTHONPATH"] == "/p"
    assert (Path(out["run"]) / "code-server.yaml").read_text() == out["config"]
    assert (home / ".local/share/code-server/extensions").is_dir()
    shown = subprocess.run([sys.executable, "-I", str(here / "launch.py"), "--dry-run",
                            "--allow-root"], env={**env, "PASSWORD": "s3cret"},
                           capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["auth"] == "password"
    assert "s3cret" not in shown.stdout, "the password is printed"
    refused = subprocess.run([sys.executable, "-I", str(here / "launch.py"), "--allow-root",
                              "--auth", "password"], env=env, capture_output=True, text=True,
                             check=False)
    assert refused.returncode == rt.EXIT_CONFIG
    assert refused.stderr.startswith("[vscode] --auth password needs the password in $PASSWORD")
    assert "Traceback" not in refused.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the root refusal")
def test_root_is_refused_without_allow_root(tmp_path: Path) -> None:
    here = launch_dir(tmp_path)
    proc = subprocess.run([sys.executable, "-I", str(here / "launch.py"), "--dry-run"],
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == rt.EXIT_CONFIG
    assert "refusing to run as root: pass --allow-root" in proc.stderr
