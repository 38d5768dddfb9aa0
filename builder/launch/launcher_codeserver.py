"""The launcher's code-server (VS Code in the browser) mode: service kind "code-server".

Shipped verbatim as ``app/share/launch/codeserver.py`` beside ``launch.py`` (``launcher.py``),
which loads it for that kind and calls ``main`` with its own helpers (``make_state``, ``log``).
Standard library only, CPython >= 3.8 (annotations are never evaluated), never imports builder
or launch.py. Pure functions take the environment as a mapping; ``main`` is the edge. What it
shares with the launcher (``Parser``, ``tcp_port``, ``EXIT_CONFIG``, ...) is a copy, kept
identical to the launcher's by tests/unit/launch/test_launcher_copies.py.

    launch [--port N] [--ip ADDR] [--bind-addr HOST:PORT] [--auth none|password]
           [--notebook-dir DIR] [--platform-auth] [--allow-root] [--dry-run] [-- OPTIONS...]

Unlike Jupyter, the server's environment is the image's: code-server's terminals, tasks and
extensions inherit it (``PYTHONPATH``, ``VIRTUAL_ENV``, ``LD_LIBRARY_PATH`` are the user's).
``app/bin/code-server`` loads the bundled node without the image's ``LD_*``, ``NODE_OPTIONS``
and ``NODE_PATH``; the variables that would stop code-server from starting this server, or bind
it elsewhere, are dropped here. State goes under ``$HOME`` (or the launcher's temporary home);
code-server reads a configuration written into the launch directory, so it never writes
``~/.config/code-server/config.yaml`` with a random password.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

EXIT_CONFIG = 78  # launcher.EXIT_CONFIG
AUTH_MODES = ("none", "password")
PASSWORD_VARIABLES = ("PASSWORD", "HASHED_PASSWORD")  # read (then hidden) by code-server itself
# Not for the server: the node runtime's own knobs (bin/code-server unsets them too), $PORT and
# $CODE_SERVER_HOST (they override the bind address, even --bind-addr), and what would make it
# hand its arguments to another running instance or think it is its own child process.
DROPPED = ("NODE_OPTIONS", "NODE_PATH", "PORT", "CODE_SERVER_HOST", "CODE_SERVER_CONFIG",
           "CODE_SERVER_PARENT_PID", "CODE_SERVER_SESSION_SOCKET", "VSCODE_IPC_HOOK_CLI")
# Per-user directories: kept when usable, else dropped (their default is under HOME).
XDG_HOMES = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
             "XDG_STATE_HOME")
# Always: no telemetry, no update check against GitHub, no coder.com "Getting Started" page.
# (Extensions come from Open VSX when the user installs or updates them; that stays theirs.)
FIXED_OPTIONS = ("--disable-telemetry", "--disable-update-check",
                 "--disable-getting-started-override")

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_PORT = re.compile(r"[0-9]{1,5}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
KUBEFLOW_REWRITE = "notebooks.kubeflow.org/http-rewrite-uri: /"


class Parser(argparse.ArgumentParser):
    """argparse whose usage and configuration errors exit ``EXIT_CONFIG`` (78), not 2
    (launcher.Parser): s6's finish script does not restart a refused configuration."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def tcp_port(value: str, source: str) -> int:
    """``value`` (from ``source``: an option or a variable) as a TCP port, or ValueError."""
    if not _PORT.fullmatch(value.strip()) or not 1 <= int(value) <= 65535:
        raise ValueError(f"{source} {value!r} is not a TCP port (a number from 1 to 65535)")
    return int(value)


class Refused(Exception):
    """A configuration the launcher refuses (exit 78: s6 does not restart it)."""


class Plan(NamedTuple):
    argv: list[str]
    env: dict[str, str]
    root_dir: str
    bind_addr: str
    auth: str
    config: str  # the configuration file's text
    config_path: str
    user_data_dir: str
    extensions_dir: str


def writable_dir(path: str | None) -> bool:
    return bool(path) and Path(str(path)).is_dir() and os.access(str(path), os.W_OK | os.X_OK)


def usable_dir(path: str) -> bool:
    """Writable, or absent with a writable parent (then it can be created)."""
    candidate = Path(path)
    if writable_dir(path):
        return True
    return (candidate.is_absolute() and not candidate.exists()
            and writable_dir(str(candidate.parent)))


def check_host(value: str, source: str) -> str:
    """An address to bind: an IP literal (IPv6 with or without brackets) or a host name
    (code-server resolves it)."""
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{source} {value!r} is not an IP address or host name "
                             "(e.g. 0.0.0.0, 127.0.0.1, ::)") from None
    return value


def split_bind_addr(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as code-server reads it; a port is required."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--bind-addr {value!r} is not HOST:PORT (e.g. 0.0.0.0:8080)")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"--bind-addr {value!r}: write an IPv6 address in brackets, "
                         "e.g. [::]:8080")
    return host, int(port)


def join_bind_addr(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def parse_args(argv: Sequence[str], launch: Mapping[str, Any],
               env: Mapping[str, str]) -> argparse.Namespace:
    """The launcher's options; everything after ``--`` is code-server's (``args.extra``)."""
    argv = list(argv)
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1:]
    parser = Parser(
        prog="launch", description=f"Start {launch['name']} {launch['version']} (code-server) "
        "from its bundle.", epilog="Options after -- are passed to code-server. A refused "
        f"configuration (bad option or variable) exits {EXIT_CONFIG}.")
    parser.add_argument("--port", help=f"TCP port (default: $LAUNCH_PORT, else {launch['port']})")
    parser.add_argument("--ip", help="address to bind (default: $LAUNCH_IP, else 0.0.0.0)")
    parser.add_argument("--bind-addr", metavar="HOST:PORT",
                        help="code-server's own form of --ip and --port (overrides both)")
    parser.add_argument("--auth", choices=AUTH_MODES,
                        help="password: code-server asks for $PASSWORD (or checks "
                        "$HASHED_PASSWORD, argon2); default: password when one of them is set, "
                        "else none")
    parser.add_argument("--notebook-dir", "--folder", dest="folder", metavar="DIR",
                        help="the folder opened (default: $HOME, or a temporary home when "
                        "$HOME is missing or read-only)")
    parser.add_argument("--platform-auth", action="store_true",
                        help="the platform in front authenticates users (no password unless "
                        "--auth password or $PASSWORD/$HASHED_PASSWORD)")
    parser.add_argument("--allow-root", action="store_true", help="allow running as root")
    parser.add_argument("--dry-run", action="store_true",
                        help="prepare everything, print the server's command (JSON) and exit")
    args = parser.parse_args(argv)
    args.extra = extra
    try:
        if args.ip is not None:
            check_host(args.ip, "--ip")
        else:
            args.ip = check_host(env.get("LAUNCH_IP") or "0.0.0.0", "$LAUNCH_IP")  # noqa: S104
        if args.bind_addr is not None:
            args.ip, args.port = split_bind_addr(args.bind_addr)
            check_host(args.ip, "--bind-addr")
        elif args.port is not None:
            args.port = tcp_port(args.port, "--port")
        elif env.get("LAUNCH_PORT"):
            args.port = tcp_port(env["LAUNCH_PORT"], "$LAUNCH_PORT")
        else:
            args.port = int(launch["port"])
    except ValueError as exc:
        parser.error(str(exc))
    return args


def choose_auth(requested: str | None, env: Mapping[str, str]) -> str:
    """``--auth`` when given; else a password when the environment has one; else none. A
    password mode without a password is refused (code-server would invent one nobody sees)."""
    has_password = any(env.get(name) for name in PASSWORD_VARIABLES)
    auth = requested or ("password" if has_password else "none")
    if auth == "password" and not has_password:
        raise Refused("--auth password needs the password in $PASSWORD (or an argon2 hash in "
                      "$HASHED_PASSWORD); set one, or use --auth none behind a platform that "
                      "authenticates")
    return auth


def config_text(*, bind_addr: str, auth: str, title: str) -> str:
    """code-server's YAML configuration (values as JSON strings: valid YAML, any text safe).
    The password stays in the environment: code-server hides it from its children."""
    return "\n".join([
        f"# {title}: code-server configuration",
        "# Written at launch time by builder's launcher; edits are lost.",
        f"bind-addr: {json.dumps(bind_addr)}",
        f"auth: {json.dumps(auth)}",
        "cert: false",
    ]) + "\n"


def state_dirs(env: Mapping[str, str], home: str) -> tuple[str, str]:
    """code-server's user data and extensions directories: under a usable ``XDG_DATA_HOME``,
    else ``~/.local/share``."""
    data = env.get("XDG_DATA_HOME") or ""
    if not (data and Path(data).is_absolute() and usable_dir(data)):
        data = str(Path(home, ".local", "share"))
    user_data = Path(data, "code-server")
    return str(user_data), str(user_data / "extensions")


def server_environment(original: Mapping[str, str], *, home: str,
                       recipe_env: Mapping[str, str]) -> dict[str, str]:
    """The image's environment (the user's terminals inherit it), ``HOME`` at the state home,
    without ``DROPPED`` and without per-user directories it cannot write."""
    env = {k: v for k, v in original.items() if k not in DROPPED}
    env.update(recipe_env)
    env["HOME"] = home
    for name in XDG_HOMES:
        value = env.get(name)
        if value is None:
            continue
        usable = writable_dir(value) if name == "XDG_RUNTIME_DIR" else usable_dir(value)
        if not (Path(value).is_absolute() and usable):
            del env[name]
    return env


def substitute(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def plan(launch: Mapping[str, Any], args: argparse.Namespace, original: Mapping[str, str], *,
         app_root: str, home: str, run: Path, python: str) -> Plan:
    """Everything decided before code-server starts; writes nothing."""
    auth = choose_auth(args.auth, original)
    bind_addr = join_bind_addr(args.ip, args.port)
    root_dir = str(Path(args.folder or home).absolute())
    env = server_environment(original, home=home, recipe_env=launch.get("env") or {})
    user_data_dir, extensions_dir = state_dirs(env, home)
    config_path = str(run / "code-server.yaml")
    server = launch["server"]
    entry = str(Path(app_root, server["entry"]))
    argv = [python, "-I", entry] if server.get("python_script") else [entry]
    values = {"port": str(args.port), "ip": args.ip, "base_url": "/", "root_dir": root_dir}
    argv += [substitute(a, values) for a in server.get("args", ())]
    argv += ["--config", config_path, "--user-data-dir", user_data_dir,
             "--extensions-dir", extensions_dir, *FIXED_OPTIONS, *args.extra, root_dir]
    return Plan(argv=argv, env=env, root_dir=root_dir, bind_addr=bind_addr, auth=auth,
                config=config_text(bind_addr=bind_addr, auth=auth,
                                   title=f"{launch['name']} {launch['version']}"),
                config_path=config_path, user_data_dir=user_data_dir,
                extensions_dir=extensions_dir)


def main(argv: Sequence[str], launch: Mapping[str, Any], original: Mapping[str, str], *,
         app_root: str, make_state: Callable[[Mapping[str, str], str], Any],
         log: Callable[[str], None]) -> int:
    """The code-server launch: ``original`` is the platform's environment (``LD_*`` back)."""
    args = parse_args(argv, launch, original)
    if os.geteuid() == 0 and not args.allow_root:
        log("refusing to run as root: pass --allow-root, or run as a user (for example "
            "docker run --user 1000:1000)")
        return EXIT_CONFIG
    state = make_state(original, launch["name"])
    if state.home_is_temporary:
        log(f"$HOME ({original.get('HOME') or 'unset'}) is missing or read-only: settings, "
            f"extensions and files go to {state.home}, which does not outlive the container")
    try:
        decided = plan(launch, args, original, app_root=app_root, home=state.home,
                       run=state.run, python=sys.executable)
    except Refused as exc:
        log(str(exc))
        return EXIT_CONFIG
    for directory in (decided.user_data_dir, decided.extensions_dir):
        Path(directory).mkdir(mode=0o700, parents=True, exist_ok=True)
    Path(decided.config_path).write_text(decided.config, encoding="utf-8")
    dropped = sorted(k for k in ("PORT", "CODE_SERVER_HOST") if k in original)
    if dropped:
        log(f"ignoring ${' and $'.join(dropped)}: the address is {decided.bind_addr} "
            "(set it with --port, --ip, --bind-addr or $LAUNCH_PORT)")
    if args.dry_run:
        shown = {k: "<hidden>" if k in PASSWORD_VARIABLES else v for k, v in decided.env.items()}
        print(json.dumps({"argv": decided.argv, "env": shown, "run": str(state.run),
                          "root_dir": decided.root_dir, "bind_addr": decided.bind_addr,
                          "auth": decided.auth, "config": decided.config},
                         indent=1, sort_keys=True))
        return 0
    if decided.auth == "none" and not args.platform_auth and args.ip not in LOOPBACK:
        log(f"no password (--auth none): whoever reaches {decided.bind_addr} gets this editor "
            "and its terminal; set $PASSWORD for a password")
    if original.get("NB_PREFIX"):
        log(f"$NB_PREFIX is {original['NB_PREFIX']}: code-server serves at / and expects the "
            f"proxy to strip the prefix (Kubeflow: the notebook's annotation {KUBEFLOW_REWRITE}, "
            "which the dashboard sets for VS Code notebooks)")
    log(f"serving {decided.root_dir} at http://{decided.bind_addr}/ (auth: {decided.auth})")
    try:
        os.chdir(decided.root_dir)
    except OSError:
        log(f"cannot enter {decided.root_dir}; starting in {Path.cwd()}")
    os.execve(decided.argv[0], decided.argv, decided.env)  # noqa: S606 (the bundle's own app)
    return 1
