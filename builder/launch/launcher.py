"""The launcher that runs inside a bundle, on the bundle's own Python.

Shipped verbatim as ``app/share/launch/launch.py`` beside ``launch.json`` (what the build knew:
app name, server flavor and its configuration traits, default port, wheelhouse). ``app/bin/launch``
puts ``LD_*`` aside and execs ``python -I`` on this file. Standard library only, CPython >= 3.8
(annotations are never evaluated), never imports builder. Pure functions take the environment
as a mapping; ``main`` is the edge.

    launch [--port N] [--base-url PATH] [--ip ADDR] [--notebook-dir DIR] [--platform-auth]
           [--allow-root] [--dry-run]
    launch exec image|bundle [--prepend NAME=VALUE] -- ARGV...   (kernels and terminals)

Service kind "code-server" (``launch.json`` ``kind``) is another mode with its own options and
environment: ``codeserver.py`` beside this file (``launcher_codeserver.py`` in builder), loaded
by ``main``. A Jupyter service's kernels (which Python is ``python3``, ipykernel for the
image's Python) are ``kernels.py`` beside this file (``launcher_kernels.py``), loaded likewise.

    launch install-kernel PYTHON   (ipykernel for the image's PYTHON, by hand)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import json
import os
import pwd
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

EXIT_CONFIG = 78  # EX_CONFIG: the s6 finish script turns it into "do not restart"
CODE_SERVER_MODULE = "codeserver.py"  # the code-server mode, shipped beside this file
SAVED = "BUILDER_LAUNCH_SAVED_"  # LD_* put aside by bin/launch before Python started
CHILD_ENV = "BUILDER_LAUNCH_CHILD_ENV"  # how kernels and terminals get the image's env back
LOADER = ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT")
# What the image leaks into the bundle's Python (besides every PYTHON* variable), and the
# variables that would make Jupyter read the image's config and data directories.
LEAKS = (*LOADER, "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_NO_CONFIG",
         "JUPYTER_PREFER_ENV_PATH", "JUPYTER_PLATFORM_DIRS", "XDG_CONFIG_DIRS", "XDG_DATA_DIRS")
# Set for the server only: kernels and terminals never see them.
INTERNAL = (CHILD_ENV, "JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "JUPYTER_PLATFORM_DIRS",
            "XDG_CONFIG_DIRS", "XDG_DATA_DIRS")
KERNELS_MODULE = "kernels.py"  # a Jupyter service's kernels, shipped beside this file
_NAME = ["launch"]  # the app's name once launch.json is read, for log lines
_PORT = re.compile(r"[0-9]{1,5}")
# a URL path segment (RFC 3986 pchar): what a platform's proxy can route to unchanged
_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def log(message: str) -> None:
    sys.stderr.write(f"[{_NAME[0]}] {message}\n")
    sys.stderr.flush()


class Parser(argparse.ArgumentParser):
    """argparse whose usage and configuration errors exit ``EXIT_CONFIG`` (78), not 2: a
    supervisor (s6's finish script) must not restart a configuration that cannot work."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def tcp_port(value: str, source: str) -> int:
    """``value`` (from ``source``: an option or a variable) as a TCP port, or ValueError."""
    if not _PORT.fullmatch(value.strip()) or not 1 <= int(value) <= 65535:
        raise ValueError(f"{source} {value!r} is not a TCP port (a number from 1 to 65535)")
    return int(value)


def choose_port(arg: str | None, env: Mapping[str, str], default: int) -> int:
    """--port, else ``$LAUNCH_PORT``, else the bundle's default; ValueError names the source."""
    if arg is not None:
        return tcp_port(arg, "--port")
    if env.get("LAUNCH_PORT"):
        return tcp_port(env["LAUNCH_PORT"], "$LAUNCH_PORT")
    return int(default)


def check_ip(value: str, source: str) -> str:
    """An address to bind: an IP literal (IPv6 with or without brackets) or a host name."""
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{source} {value!r} is not an IP address or host name "
                             "(e.g. 0.0.0.0, 127.0.0.1, ::)") from None
    return value


def choose_ip(arg: str | None, env: Mapping[str, str]) -> str:
    """--ip, else ``$LAUNCH_IP``, else 0.0.0.0 (all IPv4 addresses); checked."""
    if arg is not None:
        return check_ip(arg, "--ip")
    return check_ip(env.get("LAUNCH_IP") or "0.0.0.0", "$LAUNCH_IP")  # noqa: S104


# --- environment ----------------------------------------------------------------------------


def is_leak(name: str) -> bool:
    return name.startswith("PYTHON") or name in LEAKS


def original_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the platform started us with: LD_* put back, our markers gone."""
    env = {k: v for k, v in environ.items() if not k.startswith(SAVED) and k != CHILD_ENV}
    for name in LOADER:
        env.pop(name, None)
        if SAVED + name in environ:
            env[name] = environ[SAVED + name]
    return env


def writable_dir(path: str | None) -> bool:
    return bool(path) and Path(str(path)).is_dir() and os.access(str(path), os.W_OK | os.X_OK)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only we can use (created 0700); refuse someone else's."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{path} exists but is not a private directory of uid {os.getuid()}")
    return path


class State(NamedTuple):
    home: str
    home_is_temporary: bool
    base: Path  # per-user scratch in $TMPDIR: the temporary home, launch directories
    run: Path  # this launch: generated config, kernelspecs, runtime files


def make_state(env: Mapping[str, str], name: str) -> State:
    """Pick writable places for everything the app writes; create what is ours."""
    tmp = env.get("TMPDIR") or ""
    if not writable_dir(tmp):
        tmp = "/tmp"  # noqa: S108 (the base below is private to this uid and checked)
    try:
        base = private_dir(Path(tmp) / f"builder-{name}-{os.getuid()}")
    except OSError:
        base = Path(tempfile.mkdtemp(prefix=f"builder-{name}-", dir=tmp))
    home = env.get("HOME", "")
    temporary = not writable_dir(home)
    if temporary:
        home = str(private_dir(base / "home"))
    prune_runs(base)
    run = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=str(base)))
    return State(home=home, home_is_temporary=temporary, base=base, run=run)


def prune_runs(base: Path) -> None:
    """Remove the launch directories of launches whose process is gone (bounded)."""
    for entry in sorted(base.glob("run-*-*"))[:200]:
        try:
            os.kill(int(entry.name.split("-")[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (ValueError, PermissionError, IndexError):
            continue


def state_environment(env: Mapping[str, str], state: State) -> dict[str, str]:
    """State variables: kept when the platform set them to something writable, else $HOME's;
    the runtime directory (sockets, connection files) is always this launch's own."""
    home = Path(state.home)
    wanted = {
        "JUPYTER_CONFIG_DIR": home / ".jupyter",
        "JUPYTER_DATA_DIR": home / ".local" / "share" / "jupyter",
        "IPYTHONDIR": home / ".ipython",
    }
    result = {"HOME": state.home, "JUPYTER_RUNTIME_DIR": str(state.run / "runtime")}
    for name, default in wanted.items():
        given = env.get(name) or ""
        usable = given and (writable_dir(given) or _creatable(Path(given)))
        result[name] = given if usable else str(default)
    return result


def _creatable(path: Path) -> bool:
    return path.is_absolute() and not path.exists() and writable_dir(str(path.parent))


def server_environment(original: Mapping[str, str], state_env: Mapping[str, str],
                       *, app_prefix: str, recipe_env: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: the leaks removed, state redirected, system Jupyter paths off.

    ``JUPYTER_PLATFORM_DIRS=1`` with ``XDG_*_DIRS`` at the bundle's own prefix makes
    jupyter_core's "system" config and data paths the bundle's, so the image's ``/etc/jupyter``
    and ``/usr/share/jupyter`` are never read."""
    env = {k: v for k, v in original.items() if not is_leak(k)}
    env.update(recipe_env)
    env.update(state_env)
    env.update({
        "PYTHONNOUSERSITE": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "XDG_CONFIG_DIRS": str(Path(app_prefix, "etc")),
        "XDG_DATA_DIRS": str(Path(app_prefix, "share")),
    })
    if "USER" not in env and "LOGNAME" not in env:
        env["USER"] = env["LOGNAME"] = user_name()
    return env


def user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (docker run --user 1000)
        return f"uid{os.getuid()}"


def child_delta(image: Mapping[str, str], server: Mapping[str, str]) -> dict[str, Any]:
    """How to turn the server's environment into the image's (for its kernels and terminals):
    unset what only the server has, set what differs."""
    return {"unset": sorted(k for k in server if k not in image),
            "set": {k: v for k, v in sorted(image.items()) if server.get(k) != v}}


def apply_delta(env: Mapping[str, str], delta: Mapping[str, Any], mode: str, *,
                prepend: Sequence[tuple[str, str]] = (), append: Sequence[tuple[str, str]] = (),
                assign: Sequence[tuple[str, str]] = (), unset: Sequence[str] = ()
                ) -> dict[str, str]:
    """The environment of a kernel or terminal. ``image``: the image's own environment (what
    the platform gave, plus the state redirects); ``bundle`` (the bundle's own kernel): the
    server's without the launcher's internals, still without the leaks. Then ``unset``,
    ``assign``, and path lists with entries put in front (``prepend``) or, when not there
    yet, at the end (``append``)."""
    result = {k: v for k, v in env.items() if k not in INTERNAL}
    if mode == "image":
        for name in delta.get("unset", ()):
            result.pop(name, None)
        result.update(delta.get("set", {}))
    for name in unset:
        result.pop(name, None)
    result.update(assign)
    for name, value in prepend:
        old = result.get(name)
        result[name] = value if not old else f"{value}{os.pathsep}{old}"
    for name, value in append:
        old = result.get(name)
        if not old:
            result[name] = value
        elif value not in old.split(os.pathsep):
            result[name] = f"{old}{os.pathsep}{value}"
    return result


def _pairs(values: Sequence[str]) -> list[tuple[str, str]]:
    return [(n, v) for n, _, v in (p.partition("=") for p in values) if n and v]


def exec_child(argv: Sequence[str]) -> None:
    """``launch exec image|bundle [--prepend|--append|--set NAME=VALUE] [--unset NAME]
    [--ipykernel-into DIR --python-version X.Y] -- ARGV...``: exec ARGV in the right
    environment (kernelspecs and the terminal command start with this)."""
    parser = Parser(prog="launch exec")
    parser.add_argument("mode", choices=("image", "bundle"))
    for option in ("--prepend", "--append", "--set"):
        parser.add_argument(option, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--unset", action="append", default=[], metavar="NAME")
    parser.add_argument("--ipykernel-into", metavar="DIR",
                        help="the image kernel's ipykernel: installed there by its first start")
    parser.add_argument("--python-version", metavar="X.Y")
    if "--" not in argv or list(argv).index("--") == len(argv) - 1:
        parser.error("usage: launch exec image|bundle [OPTIONS] -- ARGV...")
    split = list(argv).index("--")
    args = parser.parse_args(argv[:split])
    command = list(argv[split + 1:])
    delta = json.loads(os.environ.get(CHILD_ENV, "{}"))
    env = apply_delta(original_environment(os.environ), delta, args.mode,
                      prepend=_pairs(args.prepend), append=_pairs(args.append),
                      assign=_pairs(args.set), unset=args.unset)
    if args.ipykernel_into and args.python_version:
        launch, app_root, kernels = read_launch()
        command = kernels.ensure_image_kernel(args.ipykernel_into, args.python_version,
                                              command, env, launch=launch, app_root=app_root)
    program = command[0]
    if os.sep not in program:
        program = shutil.which(program, path=env.get("PATH", os.defpath)) or program
    os.execve(program, command, env)  # noqa: S606 (argv from a kernelspec we wrote)


# --- Jupyter configuration and kernels ------------------------------------------------------


def normalize_base_url(value: str, source: str = "base URL") -> str:
    """``/a/b/`` from ``a//b``; ValueError (naming ``source``) for what is not a URL path:
    a query, a fragment, spaces, ``.`` or ``..`` segments, characters a URL cannot hold."""
    parts = [p for p in value.strip().split("/") if p]
    for part in parts:
        if part in (".", "..") or not _SEGMENT.fullmatch(part):
            raise ValueError(f"{source} {value!r} is not a URL path (segment {part!r}); "
                             "expected something like /notebook/NAMESPACE/NAME")
    return "/" + "".join(f"{p}/" for p in parts)


def choose_base_url(arg: str | None, env: Mapping[str, str], default: str) -> str:
    """--base-url, else Kubeflow's NB_PREFIX, else a JupyterHub-style JPY_BASE_USER_URL."""
    for value, source in ((arg, "--base-url"), (env.get("NB_PREFIX"), "$NB_PREFIX"),
                          (env.get("JPY_BASE_USER_URL"), "$JPY_BASE_USER_URL")):
        if value:
            return normalize_base_url(value, source)
    return normalize_base_url(default)


def jupyter_config(traits: Mapping[str, str], values: Mapping[str, Any], *, title: str) -> str:
    """A Jupyter config file setting ``values`` (the launcher's names, mapped to this server
    version's traits by ``traits``; settings this version does not have are left out; values
    written with repr, so any string is safe)."""
    lines = [f"# {title}", "# Written at launch time by builder's launcher; edits are lost.",
             "c = get_config()  # noqa"]
    lines += [f"c.{traits[key]} = {values[key]!r}" for key in sorted(values) if key in traits]
    return "\n".join(lines) + "\n"


def config_values(*, ip: str, port: int, base_url: str, root_dir: str, allow_root: bool,
                  platform_auth: bool, env: Mapping[str, str], kernels: Sequence[str],
                  terminal: Sequence[str], cookie_secret_file: str) -> dict[str, Any]:
    """The server's settings. Kernelspecs are the launcher's own (first on JUPYTER_PATH) and
    only those named in ``kernels`` are offered. The cookie secret is kept in the user's
    Jupyter data directory (the server writes it 0600), so a login outlives a restart; the
    Notebook 7 migration banner is off."""
    values: dict[str, Any] = {
        "ip": ip, "port": port, "port_retries": 0, "base_url": base_url, "root_dir": root_dir,
        "open_browser": False, "allow_root": allow_root, "ensure_native_kernel": False,
        "allowed_kernelspecs": sorted(kernels),
        "terminado_settings": {"shell_command": list(terminal)},
        "cookie_secret_file": cookie_secret_file, "show_banner": False,
    }
    if platform_auth and not env.get("JUPYTER_TOKEN"):
        values["token"] = ""  # the platform in front authenticates (Kubeflow, Backend.AI)
        values["allow_origin"] = "*"
    return values


class Launch(NamedTuple):
    """Everything decided before the server starts."""

    argv: list[str]
    env: dict[str, str]
    root_dir: str
    base_url: str
    state: State
    kernels: dict[str, list[str]]  # kernelspec name -> argv


# --- the main launch ------------------------------------------------------------------------


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``{port}``, ``{base_url}``, ``{ip}`` and ``{root_dir}`` replaced; other braces kept."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def parse_args(argv: Sequence[str], launch: Mapping[str, Any],
               env: Mapping[str, str]) -> argparse.Namespace:
    parser = Parser(
        prog="launch", description=f"Start {launch['name']} {launch['version']} from its bundle.",
        epilog=f"A refused configuration (bad option or variable) exits {EXIT_CONFIG}.")
    parser.add_argument("--port", help=f"TCP port (default: $LAUNCH_PORT, else {launch['port']})")
    parser.add_argument("--base-url", help="URL prefix (default: $NB_PREFIX, "
                        "$JPY_BASE_USER_URL, else /)")
    parser.add_argument("--ip", help="address to bind (default: $LAUNCH_IP, else 0.0.0.0)")
    parser.add_argument("--notebook-dir", help="the directory served (default: $HOME, or a "
                        "temporary home when $HOME is missing or read-only)")
    parser.add_argument("--platform-auth", action="store_true",
                        help="the platform in front authenticates users: no Jupyter token "
                        "unless JUPYTER_TOKEN is set")
    parser.add_argument("--allow-root", action="store_true", help="allow running as root")
    parser.add_argument("--dry-run", action="store_true",
                        help="prepare everything, print the server's command (JSON) and exit")
    args = parser.parse_args(argv)
    try:
        args.port = choose_port(args.port, env, launch["port"])
        args.ip = choose_ip(args.ip, env)
        args.base_url = choose_base_url(args.base_url, env, launch.get("base_url", "/"))
    except ValueError as exc:
        parser.error(str(exc))
    if args.notebook_dir and not Path(args.notebook_dir).is_dir():
        parser.error(f"--notebook-dir {args.notebook_dir}: no such directory")
    return args


def terminal_command(helper: Sequence[str], *, shell: str, home: str, app_root: str
                     ) -> list[str]:
    """A terminal: the image's shell in the image's environment, with ``~/.local/bin`` and
    then the bundle's ``bin/`` (jupyter, ...) at the end of PATH (the image's own first)."""
    return [*helper, "image", f"--append=PATH={home}/.local/bin",
            f"--append=PATH={app_root}/bin", "--", shell]


def prepare(launch: Mapping[str, Any], args: argparse.Namespace, original: Mapping[str, str],
            *, here: Path) -> Launch:
    app_root = str(here.parent.parent)
    state = make_state(original, launch["name"])
    if state.home_is_temporary:
        log(f"$HOME ({original.get('HOME') or 'unset'}) is missing or read-only: state and "
            f"notebooks go to {state.home}, which does not outlive the container")
    state_env = state_environment(original, state)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
        Path(state_env[name]).mkdir(mode=0o700, parents=True, exist_ok=True)
    server_env = server_environment(original, state_env, app_prefix=sys.prefix,
                                    recipe_env=launch.get("env") or {})
    image_env = {**original, **{k: v for k, v in state_env.items() if k != "JUPYTER_RUNTIME_DIR"}}
    root_dir = str(Path(args.notebook_dir or state.home).absolute())
    base_url = choose_base_url(args.base_url, original, launch.get("base_url", "/"))
    server = launch["server"]
    entry = str(Path(app_root, server["entry"]))
    argv = [sys.executable, "-I", entry] if server.get("python_script") else [entry]
    helper = [sys.executable, "-I", str(here / "launch.py"), "exec"]
    kernel_dir = state.run / "data" / "kernels"
    kernels: dict[str, list[str]] = {}
    jupyter = server.get("jupyter")
    if jupyter:
        kernels = load_kernels(here, launch).offer_kernels(
            launch, app_root=app_root, image_env=image_env, kernel_dir=kernel_dir, helper=helper)
        shell = original.get("SHELL") or next(
            (s for s in ("/bin/bash", "/bin/sh") if Path(s).exists()), "/bin/sh")
        secret = Path(state_env["JUPYTER_DATA_DIR"], f"{launch['name']}_cookie_secret")
        values = config_values(ip=args.ip, port=args.port, base_url=base_url,
                               root_dir=root_dir, allow_root=args.allow_root,
                               platform_auth=args.platform_auth, env=original,
                               kernels=sorted(kernels), cookie_secret_file=str(secret),
                               terminal=terminal_command(helper, shell=shell, home=state.home,
                                                         app_root=app_root))
        config_dir = state.run / "config"
        config_dir.mkdir()
        (config_dir / jupyter["config_file"]).write_text(jupyter_config(
            jupyter["traits"], values, title=f"{launch['name']} {launch['version']}"),
            encoding="utf-8")
        server_env["JUPYTER_CONFIG_PATH"] = str(config_dir)
        server_env["JUPYTER_PATH"] = str(kernel_dir.parent)
    substitutions = {"port": str(args.port), "base_url": base_url, "ip": args.ip,
                     "root_dir": root_dir}
    argv += [substitute(a, substitutions) for a in server.get("args", ())]
    server_env[CHILD_ENV] = json.dumps(child_delta(image_env, server_env), sort_keys=True)
    return Launch(argv=argv, env=server_env, root_dir=root_dir, base_url=base_url, state=state,
                  kernels=kernels)


def load_mode(path: Path) -> Any:
    """A launcher mode shipped beside this file (``python -I`` puts no directory on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"builder_launch_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_kernels(here: Path, launch: Mapping[str, Any]) -> Any:
    """The kernels module beside this file, logging as this app."""
    kernels = load_mode(here / KERNELS_MODULE)
    kernels.set_app_name(launch["name"])
    return kernels


def read_launch() -> tuple[dict[str, Any], str, Any]:
    """``launch.json`` beside this file, the app root and the kernels module."""
    here = Path(__file__).resolve().parent
    launch = json.loads((here / "launch.json").read_text(encoding="utf-8"))
    _NAME[0] = launch["name"]
    return launch, str(here.parent.parent), load_kernels(here, launch)


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["exec"]:
        exec_child(argv[1:])
        return 1
    if argv[:1] == ["install-kernel"]:
        launch, app_root, kernels = read_launch()
        return int(kernels.install_kernel(argv[1:], launch, app_root=app_root,
                                          env=original_environment(os.environ)))
    here = Path(__file__).resolve().parent
    launch = json.loads((here / "launch.json").read_text(encoding="utf-8"))
    _NAME[0] = launch["name"]
    original = original_environment(os.environ)
    if launch.get("kind") == "code-server":
        mode = load_mode(here / CODE_SERVER_MODULE)
        return int(mode.main(argv, launch, original, app_root=str(here.parent.parent),
                             make_state=make_state, log=log))
    args = parse_args(argv, launch, original)
    if os.geteuid() == 0 and not args.allow_root:
        log("refusing to run as root: pass --allow-root, or run as a user (for example "
            "docker run --user 1000:1000)")
        return EXIT_CONFIG
    plan = prepare(launch, args, original, here=here)
    if args.dry_run:
        print(json.dumps({"argv": plan.argv, "env": plan.env, "run": str(plan.state.run),
                          "base_url": plan.base_url, "root_dir": plan.root_dir,
                          "kernels": plan.kernels}, indent=1, sort_keys=True))
        return 0
    log(f"serving {plan.root_dir} at http://{args.ip}:{args.port}{plan.base_url}")
    try:
        os.chdir(plan.root_dir)
    except OSError:
        log(f"cannot enter {plan.root_dir}; serving it from {Path.cwd()}")
    os.execve(plan.argv[0], plan.argv, plan.env)  # noqa: S606 (the bundle's own server)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
