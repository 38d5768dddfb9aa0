"""A Jupyter service's kernels: shipped as ``app/share/launch/kernels.py`` beside the launcher
(``launch.py``, builder's ``launcher`` module), which loads it for a Jupyter service.

Standard library only, CPython >= 3.8, never imports builder. Notebooks name the kernelspec
``python3``: it is the image's Python where the image has one that can run a kernel (its own
ipykernel, or the bundle's wheelhouse installed for it by the kernel's first start), else the
bundle's (``launch.json`` ``kernels.python3`` = "bundle" keeps it the bundle's). See
``offer_kernels``; ``ensure_image_kernel`` runs in ``launch exec`` before the image's kernel,
``install_kernel`` is ``launch install-kernel PYTHON``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

IMAGE_KERNEL_DIRS = ("/usr/local/share/jupyter/kernels", "/usr/share/jupyter/kernels")
IMAGE_KERNEL = "image-python3"  # the image's Python when python3 is the bundle's
BUNDLE_KERNEL = "bundle-python3"  # the bundle's Python when python3 is the image's
PROBE_TIMEOUT = 15.0
INSTALL_TIMEOUT = 600.0
MAX_KERNELSPECS = 50
# what pip (the bundle's, offline, isolated) keeps of the environment
PIP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE")
PROBE = r"""
import importlib.util, json, platform, sys
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3],
  "implementation": sys.implementation.name, "machine": platform.machine(),
  "abiflags": getattr(sys, "abiflags", ""),
  "ipykernel": importlib.util.find_spec("ipykernel") is not None}))
"""
_NAME = ["launch"]  # the app's name, for log lines (set by the launcher)


def set_app_name(name: str) -> None:
    _NAME[0] = name


def log(message: str) -> None:
    sys.stderr.write(f"[{_NAME[0]}] {message}\n")
    sys.stderr.flush()


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
    implementation: str
    machine: str
    abiflags: str = ""  # "" for a default build ("d": debug, "t": free-threaded)

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def tag(self) -> str:
        """Version and ABI, as in wheel tags: ``cp311-x86_64``."""
        return f"cp{self.minor.replace('.', '')}{self.abiflags}-{self.machine}"


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
                           ipykernel=bool(data["ipykernel"]),
                           implementation=str(data["implementation"]),
                           machine=str(data["machine"]), abiflags=str(data.get("abiflags", "")))
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return None


def install_command(*, python: str, wheelhouse: str, requirements: str, target: str,
                    minor: str, platform_tags: Sequence[str]) -> list[str]:
    """The bundle's own pip, offline, for the image's interpreter: only locked wheels, by hash."""
    abi = "cp" + minor.replace(".", "")
    return [python, "-I", "-m", "pip", "install", "--no-index", f"--find-links={wheelhouse}",
            "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
            "--no-compile", "--disable-pip-version-check", "--no-warn-script-location", "--quiet",
            f"--target={target}", f"--python-version={minor}", "--implementation=cp",
            f"--abi={abi}", "--abi=abi3", "--abi=none",
            *(f"--platform={tag}" for tag in platform_tags), f"--requirement={requirements}"]


def not_installable(image: ImagePython, launch: Mapping[str, Any]) -> str | None:
    """Why the bundled wheelhouse cannot give ``image`` ipykernel, or None when it can."""
    wheelhouse = (launch.get("kernels") or {}).get("wheelhouse") or {}
    advice = (f"for a kernel on it, install ipykernel into it: {image.path} -m pip install "
              "ipykernel")
    if image.implementation != "cpython" or image.minor not in wheelhouse or image.abiflags:
        have = ", ".join(sorted(wheelhouse, key=lambda v: [int(p) for p in v.split(".")]))
        return (f"{image.path} (Python {image.version}{image.abiflags}, {image.implementation}) "
                f"has no ipykernel and the bundled wheelhouse is for CPython {have or '(none)'}; "
                f"{advice}")
    if image.machine != launch.get("arch"):
        return (f"{image.path} has no ipykernel and runs on {image.machine}, the bundled "
                f"wheelhouse is for {launch.get('arch')}; {advice}")
    return None


# --- the image's kernel: ipykernel from the wheelhouse, installed by its first start ----------
#
# The wheels go to a directory of the user's own, one per app, image Python version and ABI and
# wheelhouse: ~/.local/share/<app>/image-kernel/cp311-x86_64-<digest>/ (never the image
# Python's user site or site-packages). Only the kernel process sees it: its command is
# ``python -c BOOTSTRAP`` which appends the directory to sys.path after site-packages (the
# image's own packages win) and runs ipykernel_launcher. No PYTHONPATH, no .pth and no
# sitecustomize, so nothing the kernel starts (%pip, !python, subprocesses) sees it.

IMAGE_KERNEL_BOOTSTRAP = (
    "import runpy, sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "sys.path.append({directory!r})\n"
    "runpy.run_module('ipykernel_launcher', run_name='__main__', alter_sys=True)\n")
# run by the image's Python on the fresh install: it imports, and what a kernel imports is
# compiled by that Python (pip's --no-compile: the bundle's Python would compile for itself)
IMAGE_KERNEL_CHECK = "import sys; sys.path.append(sys.argv[1]); import ipykernel.kernelapp"
# what a kernel that cannot start says in every cell: a stand-in on the bundle's Python
FAILED_KERNEL = """import sys
MESSAGE = {message!r}
sys.stderr.write(MESSAGE + '\\n')
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()
app.initialize(sys.argv[1:])
app.shell.input_transformers_cleanup.append(
    lambda lines: ['raise RuntimeError(%r) from None\\n' % MESSAGE])
app.start()
"""


def wheelhouse_digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]


def image_kernel_dir(home: str, app_name: str, image: ImagePython, digest: str) -> Path:
    return Path(home, ".local", "share", app_name, "image-kernel", f"{image.tag}-{digest}")


def fix_command(app_root: str, python: str) -> str:
    return f"{app_root}/bin/launch install-kernel {python}"


def install_ipykernel(python: str, minor: str, target: Path, *, launch: Mapping[str, Any],
                      app_root: str, env: Mapping[str, str], verbose: bool = False) -> str | None:
    """Install the wheelhouse for ``python`` (CPython ``minor``) into ``target`` unless it is
    there, under a file lock (a second start waits, then finds it done); None when done, else
    what went wrong. ``target`` appears whole or not at all (installed aside, renamed)."""
    kernels = launch.get("kernels") or {}
    wheelhouse = Path(app_root, "share", "wheelhouse")
    pip_env = {k: v for k, v in env.items() if k in PIP_ENV}
    pip_env["PIP_CONFIG_FILE"] = os.devnull
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with (target.parent / ".install.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"waiting for another kernel's install of ipykernel into {target} ...")
                fcntl.flock(lock, fcntl.LOCK_EX)
            if target.is_dir():
                return None
            work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=str(target.parent)))
            try:
                pip_env["TMPDIR"] = str(work)
                argv = install_command(
                    python=sys.executable, wheelhouse=str(wheelhouse),
                    requirements=str(wheelhouse / kernels["wheelhouse"][minor]),
                    target=str(work / "site"), minor=minor,
                    platform_tags=kernels.get("platform_tags") or ())
                if verbose:
                    argv.remove("--quiet")
                log(f"installing ipykernel for {python} (Python {minor}) into {target} from "
                    "the bundled wheelhouse (offline, once) ...")
                proc = subprocess.run(argv, env=pip_env, text=True, timeout=INSTALL_TIMEOUT,
                                      check=False, stdout=None if verbose else subprocess.PIPE,
                                      stderr=None if verbose else subprocess.STDOUT)
                if proc.returncode != 0:
                    tail = "\n".join((proc.stdout or "").strip().splitlines()[-12:])
                    return f"pip exit code {proc.returncode}\n{tail}".strip()
                shutil.rmtree(work / "site" / "bin", ignore_errors=True)  # the bundle's shebangs
                check = subprocess.run([python, "-c", IMAGE_KERNEL_CHECK, str(work / "site")],
                                       env=dict(env), capture_output=True, text=True,
                                       timeout=PROBE_TIMEOUT * 4, check=False)
                if check.returncode != 0:
                    tail = "\n".join(check.stderr.strip().splitlines()[-6:])
                    return f"{python} cannot import the installed ipykernel:\n{tail}"
                (work / "site").rename(target)
                log(f"installed ipykernel for {python} into {target}")
                return None
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"


def image_kernel_argv(python: str, helper: Sequence[str], *, directory: str | None,
                      minor: str) -> list[str]:
    """The image's kernel: its ipykernel when it has one, else the wheelhouse's, installed by
    the first start into ``directory``."""
    if directory is None:
        return [*helper, "--", python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return [*helper, f"--ipykernel-into={directory}", f"--python-version={minor}", "--",
            python, "-c", IMAGE_KERNEL_BOOTSTRAP.format(directory=directory), "-f",
            "{connection_file}"]


def ensure_image_kernel(directory: str, minor: str, command: Sequence[str],
                        env: Mapping[str, str], *, launch: Mapping[str, Any],
                        app_root: str) -> list[str]:
    """Before exec'ing the image's kernel: its ipykernel installed (first start), else a
    stand-in kernel on the bundle's Python that shows why, and how to fix it, in every cell."""
    python = command[0]
    problem = None
    if not Path(directory).is_dir():
        problem = install_ipykernel(python, minor, Path(directory), launch=launch,
                                    app_root=app_root, env=env)
    if problem is None:
        return list(command)
    message = (f"The image's Python ({python}) has no ipykernel and installing it from the "
               f"bundle failed: {problem}\nTo fix it by hand, run in a terminal: "
               f"{fix_command(app_root, python)}\nthen restart the kernel.")
    log(message)
    connection = list(command)[list(command).index("-f") + 1]
    return [sys.executable, "-I", "-c", FAILED_KERNEL.format(message=message), "-f", connection]


def install_kernel(argv: Sequence[str], launch: Mapping[str, Any], *, app_root: str,
                   env: Mapping[str, str]) -> int:
    """``launch install-kernel PYTHON``: what the image kernel's first start does, by hand, with
    pip's output (the fix a failed start names). ``env``: the image's environment."""
    parser = argparse.ArgumentParser(prog="launch install-kernel")
    parser.add_argument("python", help="the image's Python, e.g. /usr/bin/python3")
    args = parser.parse_args(argv)
    image = probe_python(args.python, env)
    if image is None:
        log(f"{args.python} does not run")
        return 1
    reason = not_installable(image, launch)
    if image.ipykernel or reason:
        log(f"{args.python} has ipykernel already" if image.ipykernel else reason or "")
        return 0 if image.ipykernel else 1
    home = env.get("HOME") or ""
    if not (home and Path(home).is_dir() and os.access(home, os.W_OK | os.X_OK)):
        log(f"$HOME ({home or 'unset'}) is missing or read-only")
        return 1
    requirements = Path(app_root, "share", "wheelhouse",
                        launch["kernels"]["wheelhouse"][image.minor])
    target = image_kernel_dir(home, launch["name"], image, wheelhouse_digest(requirements))
    if target.is_dir():
        log(f"ipykernel for {args.python} is in {target} already")
        return 0
    problem = install_ipykernel(image.path, image.minor, target, launch=launch,
                                app_root=app_root, env=env, verbose=True)
    if problem:
        log(f"could not install ipykernel for {args.python}: {problem}")
        return 1
    return 0


def kernel_names(python3: str, image: bool) -> tuple[str, str | None]:
    """The names of the bundle's kernel and of the image's (None: no kernel for the image's
    Python). Notebooks name ``python3``: it is the image's Python when the image has one that
    can run a kernel, unless the recipe says ``python3 = "bundle"``."""
    if not image:
        return "python3", None
    if python3 == "bundle":
        return "python3", IMAGE_KERNEL
    return BUNDLE_KERNEL, "python3"


def bundle_user_base(home: str, app_name: str) -> str:
    """The bundle kernel's user site base (``%pip install`` goes there, ``--user`` or not):
    the user's own, per app, never the image Python's ``~/.local``."""
    return str(Path(home, ".local", "share", app_name, "user"))


def find_image_python(launch: Mapping[str, Any], image_env: Mapping[str, str],
                      app_root: str) -> ImagePython | None:
    """The image's Python that gets a kernel: the first working one on its PATH, when it has
    ipykernel or (``image_python = "install"``) the wheelhouse can give it one."""
    policy = (launch.get("kernels") or {}).get("image_python", "off")
    for candidate in python_candidates(image_env, app_root) if policy != "off" else ():
        image = probe_python(candidate, image_env)
        if image is None:
            log(f"{candidate} (first on the image's PATH) does not run; looking further")
            continue
        if image.ipykernel:
            return image
        if policy == "install":
            reason = not_installable(image, launch)
            if reason is None:
                return image
            log(reason)
        else:
            log(f"{image.path} (Python {image.version}) has no ipykernel, so it is not offered "
                f"as a kernel (install it with: {image.path} -m pip install ipykernel)")
        return None
    return None


def offer_kernels(launch: Mapping[str, Any], *, app_root: str, image_env: Mapping[str, str],
                  kernel_dir: Path, helper: Sequence[str]) -> dict[str, list[str]]:
    """Write the kernelspecs: the bundle's Python, the image's Python (ipykernel installed by
    its first start when it lacks it) and the image's other kernelspecs, wrapped. Returns
    each name's argv."""
    name = launch["name"]
    home = image_env.get("HOME", "")
    kernels = launch.get("kernels") or {}
    image = find_image_python(launch, image_env, app_root)
    bundle_name, image_name = kernel_names(kernels.get("python3", "image"), image is not None)
    offered: dict[str, list[str]] = {}
    bundle_argv = [*helper, "bundle", "--unset=PYTHONNOUSERSITE",
                   f"--set=PYTHONUSERBASE={bundle_user_base(home, name)}", "--",
                   sys.executable, "-E", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    write_kernelspec(kernel_dir, bundle_name, kernelspec(
        bundle_argv, f"Python {sys.version.split()[0]} ({name} bundle)",
        metadata={"debugger": True}))
    offered[bundle_name] = bundle_argv
    if image is not None and image_name is not None:
        directory = None
        if not image.ipykernel:
            requirements = Path(app_root, "share", "wheelhouse",
                                kernels["wheelhouse"][image.minor])
            directory = str(image_kernel_dir(home, name, image, wheelhouse_digest(requirements)))
        argv = image_kernel_argv(image.path, [*helper, "image"], directory=directory,
                                 minor=image.minor)
        write_kernelspec(kernel_dir, image_name,
                         kernelspec(argv, f"Python {image.version} (image: {image.path})"))
        offered[image_name] = argv
        how = ("its ipykernel" if directory is None or Path(directory).is_dir() else
               f"ipykernel installed into {directory} by its first start")
        log(f"kernel {image_name}: {image.path} (Python {image.version}, {how}); "
            f"kernel {bundle_name}: the bundle's Python")
    user_kernels = str(Path(image_env.get("JUPYTER_DATA_DIR", "/nonexistent"), "kernels"))
    extra = [str(Path(p, "kernels")) for p in image_env.get("JUPYTER_PATH", "").split(":") if p]
    taken = ["python3", IMAGE_KERNEL, BUNDLE_KERNEL]
    for wrapped in wrap_image_kernelspecs([user_kernels, *extra, *IMAGE_KERNEL_DIRS], kernel_dir,
                                          [*helper, "image"], taken=taken):
        offered[wrapped] = json.loads((kernel_dir / wrapped / "kernel.json").read_text())["argv"]
    return offered
