"""builder.launch: make a bundle launchable the ways real platforms launch apps.

From the recipe's ``[service]`` and what was installed, ``plan_launch`` plans ``app/bin/launch``
(a POSIX sh front that execs the bundle's Python in isolated mode on ``share/launch/launch.py``,
this package's ``launcher`` module), ``launch.json`` (what the launcher needs to know), Backend.AI's
``service-def.json``, an s6-overlay service directory (Kubeflow) and the kernels' wheelhouse;
``apply_launch`` writes them into the staged bundle. For a Node.js app (code-server), the
build's node stage writes ``app/bin/<name>`` (``render_node_command``) and the preload it names,
``app/`` + ``NODE_ENV_JS`` (``node_env_source()``), itself.
"""

from __future__ import annotations

from pathlib import Path

from builder.errors import BuilderError
from builder.launch.apply import apply_launch
from builder.launch.model import (
    Flavor,
    JupyterServer,
    LaunchInfo,
    LaunchInputs,
    LaunchPlan,
    PlannedFile,
    WheelhouseSet,
)
from builder.launch.plan import launch_digest, node_env_source, plan_launch
from builder.launch.scripts import render_node_command
from builder.relocate.scripts import parse_python_script


def entry_is_python(app_root: Path, entry: str, *, where: str) -> bool:
    """Whether the service's ``command[0]`` is a Python script (a relocated trampoline)."""
    path = app_root / entry
    if not path.is_file():
        raise BuilderError(
            f"service.command[0] ({entry}) is not in the bundle",
            where=where,
            hint="name a file relative to the app root, e.g. bin/jupyter-notebook (an entry "
            "point in packages.expose)",
        )
    with path.open("rb") as fh:
        head = fh.read(4096)
    return parse_python_script(head) is not None


__all__ = [
    "Flavor",
    "JupyterServer",
    "LaunchInfo",
    "LaunchInputs",
    "LaunchPlan",
    "PlannedFile",
    "WheelhouseSet",
    "apply_launch",
    "entry_is_python",
    "launch_digest",
    "node_env_source",
    "plan_launch",
    "render_node_command",
]
