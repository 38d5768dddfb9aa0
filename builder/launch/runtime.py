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
environment: ``codeserver.py`` beside this file (``runtime_codeserver.py`` in builder), loaded
by ``main``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

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
IMAGE_KERNEL_DIRS = ("/usr/local/share/jupyter/kernels", "/usr/share/jupyter/kernels")
IMAGE_KERNEL = "image-python3"
PROBE_TIMEOUT = 15.0
INSTALL_TIMEOUT = 600.0
MAX_KERNELSPECS = 50
PROBE = r"""
import importlib.util, json, platform, site, sys
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3],
  "implementation": sys.implementation.name, "machine": platform.machine(),
  "ipykernel": importlib.util.find_spec("ipykernel") is not None,
  "user_site": site.getusersitepackages() if site.ENABLE_USER_SITE else None}))
"""
_NAME = ["launch"]  # the app's name once launch.json is read, for log lines


def log(message: str) -> None:
    sys.stderr.write(f"[{_NAME[0]}] {message}\n")
    sys.stderr.flush()


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


def apply_delta(env: Mapping[str, str], delta: Mapping[str, Any], mode: str,
                prepend: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The environment of a kernel or terminal. ``image``: the image's own environment (what
    the platform gave, plus the state redirects); ``bundle`` (the bundle's own kernel): the
    server's without the launcher's internals, still without the leaks."""
    result = {k: v for k, v in env.items() if k not in INTERNAL}
    if mode == "image":
        for name in delta.get("unset", ()):
            result.pop(name, None)
        result.update(delta.get("set", {}))
    for name, value in prepend:
        old = result.get(name)
        result[name] = value if not old else f"{value}{os.pathsep}{old}"
    return result


def exec_child(argv: Sequence[str]) -> None:
    """``launch exec image|bundle [--prepend NAME=VALUE] -- ARGV...``: exec ARGV in the right
    environment (kernelspecs and the terminal command start with this)."""
    parser = argparse.ArgumentParser(prog="launch exec")
    parser.add_argument("mode", choices=("image", "bundle"))
    parser.add_argument("--prepend", action="append", default=[], metavar="NAME=VALUE")
    if "--" not in argv or list(argv).index("--") == len(argv) - 1:
        parser.error("usage: launch exec image|bundle [--prepend NAME=VALUE] -- ARGV...")
    split = list(argv).index("--")
    args = parser.parse_args(argv[:split])
    command = list(argv[split + 1:])
    delta = json.loads(os.environ.get(CHILD_ENV, "{}"))
    prepend = [(n, v) for n, _, v in (p.partition("=") for p in args.prepend) if n and v]
    env = apply_delta(original_environment(os.environ), delta, args.mode, prepend=prepend)
    program = command[0]
    if os.sep not in program:
        program = shutil.which(program, path=env.get("PATH", os.defpath)) or program
    os.execve(program, command, env)  # noqa: S606 (argv from a kernelspec we wrote)


# --- Jupyter configuration and kernels ------------------------------------------------------


def normalize_base_url(value: str) -> str:
    return "/" + "".join(f"{p}/" for p in value.strip().split("/") if p)


def choose_base_url(arg: str | None, env: Mapping[str, str], default: str) -> str:
    """--base-url, else Kubeflow's NB_PREFIX, else a JupyterHub-style JPY_BASE_USER_URL."""
    for value in (arg, env.get("NB_PREFIX"), env.get("JPY_BASE_USER_URL")):
        if value:
            return normalize_base_url(value)
    return normalize_base_url(default)


def jupyter_config(traits: Mapping[str, str], values: Mapping[str, Any], *, title: str) -> str:
    """A Jupyter config file setting ``values`` (the launcher's names, mapped to this server
    version's traits by ``traits``; values written with repr, so any string is safe)."""
    lines = [f"# {title}", "# Written at launch time by builder's launcher; edits are lost.",
             "c = get_config()  # noqa"]
    lines += [f"c.{traits[key]} = {values[key]!r}" for key in sorted(values)]
    return "\n".join(lines) + "\n"


def config_values(*, ip: str, port: int, base_url: str, root_dir: str, allow_root: bool,
                  platform_auth: bool, env: Mapping[str, str], kernels: Sequence[str],
                  terminal: Sequence[str]) -> dict[str, Any]:
    """The server's settings. Kernelspecs are the launcher's own (first on JUPYTER_PATH) and
    only those named in ``kernels`` are offered."""
    values: dict[str, Any] = {
        "ip": ip, "port": port, "port_retries": 0, "base_url": base_url, "root_dir": root_dir,
        "open_browser": False, "allow_root": allow_root, "ensure_native_kernel": False,
        "allowed_kernelspecs": sorted(kernels),
        "terminado_settings": {"shell_command": list(terminal)},
    }
    if platform_auth and not env.get("JUPYTER_TOKEN"):
        values["token"] = ""  # the platform in front authenticates (Kubeflow, Backend.AI)
        values["allow_origin"] = "*"
    return values


def kernelspec(argv: Sequence[str], display_name: str, **extra: Any) -> dict[str, Any]:
    return {"argv": list(argv), "display_name": display_name, "language": "python", **extra}


def write_kernelspec(kernel_dir: Path, name: str, spec: Mapping[str, Any]) -> None:
    path = kernel_dir / name
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "kernel.json.tmp"
    tmp.write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path / "kernel.json")


def wrap_image_kernelspecs(dirs: Sequence[str], kernel_dir: Path, helper: Sequence[str],
                           taken: Sequence[str]) -> list[str]:
    """Offer the kernels the image (or the user) installed, started in the image's environment.

    A ``python3`` kernelspec is skipped: the image's Python on PATH is offered instead."""
    offered: list[str] = []
    for directory in dirs:
        try:
            entries = sorted(Path(directory).iterdir())[:MAX_KERNELSPECS] if directory else []
        except OSError:
            continue
        for spec_dir in entries:
            name = spec_dir.name
            if name in (*taken, *offered, "python3") or not (spec_dir / "kernel.json").is_file():
                continue
            try:
                spec = json.loads((spec_dir / "kernel.json").read_text(encoding="utf-8"))
                argv = spec["argv"]
                if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
                    continue
                shutil.copytree(spec_dir, kernel_dir / name, symlinks=False)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            write_kernelspec(kernel_dir, name, {**spec, "argv": [*helper, "--", *argv]})
            offered.append(name)
    return offered


class ImagePython(NamedTuple):
    path: str
    version: str  # "3.11.2"
    ipykernel: bool
    user_site: str | None
    implementation: str
    machine: str

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def python_candidates(env: Mapping[str, str], app_root: str, limit: int = 4) -> list[str]:
    """``python3`` (then ``python``) along the image's PATH, outside the bundle, deduplicated."""
    found: list[str] = []
    seen = set()
    for name in ("python3", "python"):
        for directory in env.get("PATH", "").split(os.pathsep):
            path = Path(directory or ".", name)
            if not (path.is_file() and os.access(path, os.X_OK)):
                continue
            real = str(path.resolve())
            if real.startswith(app_root.rstrip("/") + "/") or real in seen:
                continue
            seen.add(real)
            found.append(str(path))
    return found[:limit]


def probe_python(path: str, env: Mapping[str, str]) -> ImagePython | None:
    try:
        proc = subprocess.run([path, "-c", PROBE], env=dict(env), capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT, check=False)
        lines = proc.stdout.strip().splitlines()
        data = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
        if not isinstance(data, dict):
            return None
        return ImagePython(path=path, version=str(data["version"]),
                           ipykernel=bool(data["ipykernel"]), user_site=data.get("user_site"),
                           implementation=str(data["implementation"]),
                           machine=str(data["machine"]))
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return None


def install_command(*, python: str, wheelhouse: str, requirements: str, target: str,
                    minor: str, platform_tags: Sequence[str]) -> list[str]:
    """The bundle's own pip, offline, for the image's interpreter: only locked wheels, by hash."""
    abi = "cp" + minor.replace(".", "")
    return [python, "-I", "-m", "pip", "install", "--no-index", f"--find-links={wheelhouse}",
            "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
            "--disable-pip-version-check", "--no-warn-script-location", "--quiet",
            f"--target={target}", f"--python-version={minor}", "--implementation=cp",
            f"--abi={abi}", "--abi=abi3", "--abi=none",
            *(f"--platform={tag}" for tag in platform_tags), f"--requirement={requirements}"]


def not_installable(image: ImagePython, launch: Mapping[str, Any]) -> str | None:
    """Why the bundled wheelhouse cannot give ``image`` ipykernel, or None when it can."""
    wheelhouse = (launch.get("kernels") or {}).get("wheelhouse") or {}
    advice = f"install it yourself: {image.path} -m pip install --user ipykernel"
    if image.implementation != "cpython" or image.minor not in wheelhouse:
        have = ", ".join(sorted(wheelhouse, key=lambda v: [int(p) for p in v.split(".")]))
        return (f"{image.path} (Python {image.version}, {image.implementation}) has no "
                f"ipykernel and the bundled wheelhouse is for CPython {have or '(none)'}; "
                f"{advice}")
    if image.machine != launch.get("arch"):
        return (f"{image.path} has no ipykernel and runs on {image.machine}, the bundled "
                f"wheelhouse is for {launch.get('arch')}; {advice}")
    return None


def install_ipykernel(image: ImagePython, *, launch: Mapping[str, Any], app_root: str,
                      state: State, env: Mapping[str, str]) -> str | None:
    """Install the wheelhouse for ``image`` into its user site (or a private directory when
    it has none); the directory to put on its path, or None (the reason is logged)."""
    kernels = launch.get("kernels") or {}
    requirements = kernels["wheelhouse"][image.minor]
    advice = f"install it yourself: {image.path} -m pip install --user ipykernel"
    target = Path(image.user_site or Path(state.home, ".local", "share", "builder",
                                          "image-kernels", f"python{image.minor}"))
    wheelhouse = Path(app_root, "share", "wheelhouse")
    argv = install_command(python=sys.executable, wheelhouse=str(wheelhouse),
                           requirements=str(wheelhouse / requirements), target=str(target),
                           minor=image.minor, platform_tags=kernels.get("platform_tags") or ())
    pip_env = {k: v for k, v in env.items() if not k.startswith("PIP_") and not is_leak(k)}
    pip_env.update({"PIP_CONFIG_FILE": os.devnull, "TMPDIR": str(state.run)})
    had_bin = (target / "bin").exists()
    log(f"installing ipykernel for {image.path} (Python {image.version}) into {target} from "
        "the bundled wheelhouse (offline) ...")
    with (state.base / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            target.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(argv, env=pip_env, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log(f"could not install ipykernel for {image.path}: {exc}; {advice}")
            return None
    if not had_bin:  # console scripts naming the bundle's python: not for this image
        shutil.rmtree(target / "bin", ignore_errors=True)
    if proc.returncode != 0:
        tail = "\n".join("  | " + line for line in proc.stderr.strip().splitlines()[-12:])
        log(f"could not install ipykernel for {image.path} (pip exit code {proc.returncode}):"
            f"\n{tail}\n  the bundle's own Python kernel still works; {advice}")
        return None
    log(f"installed ipykernel for {image.path}")
    return str(target)


def image_kernel(image: ImagePython, helper: Sequence[str],
                 extra_path: str | None) -> dict[str, Any]:
    prefix = list(helper)
    if extra_path and extra_path != image.user_site:
        prefix.append(f"--prepend=PYTHONPATH={extra_path}")
    argv = [*prefix, "--", image.path, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return kernelspec(argv, f"Python {image.version} (image: {image.path})")


class Launch(NamedTuple):
    """Everything decided before the server starts."""

    argv: list[str]
    env: dict[str, str]
    root_dir: str
    base_url: str
    state: State
    pending: ImagePython | None  # the image's Python, to get ipykernel in the background
    image_env: dict[str, str]
    kernel_dir: Path
    helper: list[str]


def install_in_background(launch: Mapping[str, Any], app_root: str, plan: Launch) -> None:
    """Fork (twice, same process group) an installer that adds the kernelspec when done, so
    the server starts at once; the log explains the outcome."""
    image = plan.pending
    if image is None:
        return
    if os.fork() != 0:
        os.wait()
        return
    if os.fork() != 0:
        os._exit(0)
    status = 1
    try:
        os.nice(10)  # the server's start comes first
        extra = install_ipykernel(image, launch=launch, app_root=app_root, state=plan.state,
                                  env=plan.image_env)
        if extra is not None:
            fresh = probe_python(image.path, {**plan.image_env, "PYTHONPATH": extra})
            if fresh is not None and fresh.ipykernel:
                write_kernelspec(plan.kernel_dir, IMAGE_KERNEL,
                                 image_kernel(image, [*plan.helper, "image"], extra))
                log(f"kernel {IMAGE_KERNEL}: {image.path} (Python {image.version})")
                status = 0
            else:
                log(f"ipykernel was installed into {extra} but {image.path} cannot import it")
    finally:
        os._exit(status)


# --- the main launch ------------------------------------------------------------------------


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``{port}``, ``{base_url}``, ``{ip}`` and ``{root_dir}`` replaced; other braces kept."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def parse_args(argv: Sequence[str], launch: Mapping[str, Any],
               env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="launch", description=f"Start {launch['name']} {launch['version']} from its bundle.")
    parser.add_argument("--port", type=int, default=env.get("LAUNCH_PORT") or launch["port"],
                        help=f"TCP port (default: $LAUNCH_PORT, else {launch['port']})")
    parser.add_argument("--base-url", help="URL prefix (default: $NB_PREFIX, "
                        "$JPY_BASE_USER_URL, else /)")
    parser.add_argument("--ip", default=env.get("LAUNCH_IP") or "0.0.0.0",  # noqa: S104
                        help="address to bind (default: $LAUNCH_IP, else 0.0.0.0)")
    parser.add_argument("--notebook-dir", help="the directory served (default: $HOME, or a "
                        "temporary home when $HOME is missing or read-only)")
    parser.add_argument("--platform-auth", action="store_true",
                        help="the platform in front authenticates users: no Jupyter token "
                        "unless JUPYTER_TOKEN is set")
    parser.add_argument("--allow-root", action="store_true", help="allow running as root")
    parser.add_argument("--dry-run", action="store_true",
                        help="prepare everything, print the server's command (JSON) and exit")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port")
    return args


def offer_kernels(launch: Mapping[str, Any], *, app_root: str, image_env: Mapping[str, str],
                  kernel_dir: Path, helper: Sequence[str]) -> tuple[list[str], ImagePython | None]:
    """The bundle's kernel, the image's Python when it has ipykernel, and the image's other
    kernelspecs: their names, and the image's Python when ipykernel is to be installed for it
    (its kernelspec appears when that is done)."""
    write_kernelspec(kernel_dir, "python3", kernelspec(
        [*helper, "bundle", "--", sys.executable, "-s", "-E", "-m", "ipykernel_launcher", "-f",
         "{connection_file}"],
        f"Python {sys.version.split()[0]} ({launch['name']})", metadata={"debugger": True}))
    policy = (launch.get("kernels") or {}).get("image_python", "off")
    pending = None
    for candidate in python_candidates(image_env, app_root) if policy != "off" else ():
        image = probe_python(candidate, image_env)
        if image is None:
            log(f"{candidate} (first on the image's PATH) does not run; looking further")
            continue
        if image.ipykernel:
            write_kernelspec(kernel_dir, IMAGE_KERNEL, image_kernel(image, [*helper, "image"],
                                                                    None))
            log(f"kernel {IMAGE_KERNEL}: {image.path} (Python {image.version})")
        elif policy == "install":
            reason = not_installable(image, launch)
            if reason:
                log(reason)
            else:
                pending = image
        else:
            log(f"{image.path} (Python {image.version}) has no ipykernel, so it is not offered "
                f"as a kernel (install it with: {image.path} -m pip install --user ipykernel)")
        break
    user_kernels = str(Path(image_env.get("JUPYTER_DATA_DIR", "/nonexistent"), "kernels"))
    extra = [str(Path(p, "kernels")) for p in image_env.get("JUPYTER_PATH", "").split(":") if p]
    wrapped = wrap_image_kernelspecs([user_kernels, *extra, *IMAGE_KERNEL_DIRS], kernel_dir,
                                     [*helper, "image"], taken=["python3", IMAGE_KERNEL])
    return ["python3", IMAGE_KERNEL, *wrapped], pending


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
    pending = None
    jupyter = server.get("jupyter")
    if jupyter:
        kernels, pending = offer_kernels(launch, app_root=app_root, image_env=image_env,
                                         kernel_dir=kernel_dir, helper=helper)
        shell = original.get("SHELL") or next(
            (s for s in ("/bin/bash", "/bin/sh") if Path(s).exists()), "/bin/sh")
        values = config_values(ip=args.ip, port=args.port, base_url=base_url,
                               root_dir=root_dir, allow_root=args.allow_root,
                               platform_auth=args.platform_auth, env=original,
                               kernels=kernels, terminal=[*helper, "image", "--", shell])
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
                  pending=pending, image_env=image_env, kernel_dir=kernel_dir, helper=helper)


def load_mode(path: Path) -> Any:
    """A launcher mode shipped beside this file (``python -I`` puts no directory on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"builder_launch_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["exec"]:
        exec_child(argv[1:])
        return 1
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
                          "install_ipykernel_for": plan.pending.path if plan.pending else None},
                         indent=1, sort_keys=True))
        return 0
    install_in_background(launch, str(here.parent.parent), plan)
    log(f"serving {plan.root_dir} at http://{args.ip}:{args.port}{plan.base_url}")
    try:
        os.chdir(plan.root_dir)
    except OSError:
        log(f"cannot enter {plan.root_dir}; serving it from {Path.cwd()}")
    os.execve(plan.argv[0], plan.argv, plan.env)  # noqa: S606 (the bundle's own server)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
