"""Plan the launch layer of a bundle from the recipe's service and what was installed."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from builder.errors import BuilderError
from builder.fsutil import canonical_json, sha256_bytes
from builder.launch.jupyter import detect_server
from builder.launch.model import (
    LaunchInfo,
    LaunchInputs,
    LaunchPlan,
    PlannedFile,
    WheelhouseSet,
)
from builder.launch.scripts import (
    render_launcher,
    render_s6_cont_init,
    render_s6_finish,
    render_s6_run,
)
from builder.launch.servicedef import service_def, service_ports
from builder.layout import APP, SERVICE_DEF, SHARE_LAUNCH
from builder.recipe.model import ImagePython, Kernels, ServiceKind

LAUNCH_FORMAT_VERSION = 3  # of launch.json; bump with any change to what the launcher reads
LAUNCH_DIR = f"{APP}/{SHARE_LAUNCH}"
# the service kinds' extra launcher files (relative to LAUNCH_DIR) and their sources here
MODES = {ServiceKind.CODE_SERVER: ("codeserver.py", "launcher_codeserver.py"),
         ServiceKind.JUPYTER: ("kernels.py", "launcher_kernels.py")}
# how a service's s6 run script says which variables still ask for a token or password
CREDENTIALS = {ServiceKind.JUPYTER: "JUPYTER_TOKEN", ServiceKind.CODE_SERVER:
               "PASSWORD/HASHED_PASSWORD"}
WHEELHOUSE_DIR = "app/share/wheelhouse"


def launcher_source() -> bytes:
    """The launcher module shipped as ``app/share/launch/launch.py``."""
    return files("builder.launch").joinpath("launcher.py").read_bytes()


def node_env_source() -> bytes:
    """``node-env.js``, the preload of ``render_node_command``'s scripts: the build writes it
    to ``NODE_ENV_JS`` (``share/launch/node-env.js``, under ``app/``) for any Node.js app."""
    return files("builder.launch").joinpath("node-env.js").read_bytes()


def launch_sources() -> tuple[str, ...]:
    """The files of this package that make the launch layer (code, shipped files, schemas)."""
    return tuple(sorted(entry.name for entry in files("builder.launch").iterdir()
                        if entry.name.endswith((".py", ".json", ".js"))))


def launch_digest() -> str:
    """Part of a bundle's input digest: a changed launch layer (the launcher, the scripts and
    files rendered here, node-env.js) is a changed bundle, so a rebuild is not a stale cache
    hit."""
    package = files("builder.launch")
    parts = [f"{LAUNCH_FORMAT_VERSION}".encode()]
    for name in launch_sources():
        parts += [name.encode(), sha256_bytes(package.joinpath(name).read_bytes()).encode()]
    return "sha256:" + sha256_bytes(b"\n".join(parts))


def wheelhouse_requirements(entry: WheelhouseSet) -> str:
    """What pip installs for that image Python, by hash, offline, from the wheelhouse."""
    lines = [f"# ipykernel and its dependencies for an image's CPython {entry.python}, locked "
             "by builder. The launcher", "# installs them with the bundle's pip: --no-index "
             "--require-hashes --no-deps."]
    lines += [f"{name}=={version} --hash=sha256:{sha256}"
              for name, version, sha256 in entry.requirements]
    return "\n".join(lines) + "\n"


def plan_launch(inputs: LaunchInputs) -> LaunchPlan:
    recipe = inputs.recipe
    service = recipe.service
    if service is None:
        raise BuilderError("nothing to launch: the recipe has no [service]", where=recipe.path)
    where = f"{recipe.path}: service"
    server = None
    if service.kind is ServiceKind.JUPYTER:
        server = detect_server(inputs.installed, where=where)
        if not inputs.entry_is_python:
            raise BuilderError(
                f"service.command[0] ({service.command[0]}) is not a Python console script",
                where=f"{recipe.path}: service.command",
                hint='a Jupyter service runs its console script, e.g. "bin/jupyter-notebook" '
                "or \"bin/jupyter-lab\" (list it in packages.expose)",
            )
    kernels = recipe.kernels or Kernels()
    if kernels.image_python is ImagePython.INSTALL and not inputs.wheelhouse:
        raise BuilderError("kernels.image_python is \"install\" but the lock has no wheelhouse",
                           where=recipe.path, hint=f"refresh the lock: builder lock {recipe.path}")
    wheel_files: dict[str, PlannedFile] = {}
    requirement_files = []
    for entry in inputs.wheelhouse:
        name = f"requirements-py{entry.python}.txt"
        requirement_files.append(PlannedFile(path=f"{WHEELHOUSE_DIR}/{name}",
                                             data=wheelhouse_requirements(entry).encode()))
        for wheel in entry.wheels:
            wheel_files.setdefault(wheel.name, PlannedFile(path=f"{WHEELHOUSE_DIR}/{wheel.name}",
                                                           source=wheel))
    launch: dict[str, Any] = {
        "format_version": LAUNCH_FORMAT_VERSION,
        "name": recipe.name,
        "version": recipe.version,
        "kind": service.kind.value,
        "arch": inputs.arch,
        "port": service.port,
        "base_url": "/",
        "env": dict(service.env),
        "server": {
            "entry": service.command[0],
            "python_script": inputs.entry_is_python,
            "args": list(service.command[1:]),
        },
        "kernels": {  # read for a Jupyter service only
            "image_python": (kernels.image_python if service.kind is ServiceKind.JUPYTER
                             else ImagePython.OFF).value,
            "platform_tags": list(inputs.platform_tags),
            "python3": kernels.python3,
            "wheelhouse": {e.python: f"requirements-py{e.python}.txt" for e in inputs.wheelhouse},
        },
    }
    if server is not None:
        launch["server"]["jupyter"] = {
            "flavor": server.flavor.value,
            "config_file": server.config_file,
            "traits": dict(server.traits),
        }
    s6 = f"app/share/s6/services.d/{recipe.name}"
    mode_files = []
    if service.kind in MODES:
        shipped, source = MODES[service.kind]
        mode_files.append(PlannedFile(path=f"{LAUNCH_DIR}/{shipped}",
                                      data=files("builder.launch").joinpath(source).read_bytes()))
    planned = [
        PlannedFile(path=SERVICE_DEF, data=canonical_json(service_def(recipe)).encode()),
        PlannedFile(path="app/bin/launch", executable=True,
                    data=render_launcher(name=recipe.name, version=recipe.version,
                                         python=inputs.python)),
        PlannedFile(path=f"{LAUNCH_DIR}/launch.py", data=launcher_source()),
        PlannedFile(path=f"{LAUNCH_DIR}/launch.json", data=canonical_json(launch).encode()),
        PlannedFile(path=f"{s6}/run", executable=True,
                    data=render_s6_run(name=recipe.name, final_root=recipe.final_root,
                                       credentials=CREDENTIALS.get(service.kind))),
        PlannedFile(path=f"app/share/s6/cont-init.d/{recipe.name}", executable=True,
                    data=render_s6_cont_init(name=recipe.name, final_root=recipe.final_root)),
        PlannedFile(path=f"{s6}/finish", executable=True, data=render_s6_finish(name=recipe.name)),
        *mode_files,
        *requirement_files,
        *wheel_files.values(),
    ]
    info = LaunchInfo(
        launcher="app/bin/launch",
        service_def=SERVICE_DEF,
        s6_service=s6,
        service_ports=service_ports(recipe),
        flavor=None if server is None else server.flavor,
        image_python=kernels.image_python.value if server is not None else ImagePython.OFF.value,
        wheelhouse=tuple((e.python, len(e.wheels)) for e in inputs.wheelhouse),
    )
    return LaunchPlan(files=tuple(sorted(planned, key=lambda f: f.path)), info=info)
