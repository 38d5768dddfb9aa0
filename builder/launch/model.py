"""The launch plan: the files that make a bundle launchable, and what the manifest says of them.

Pure data. Paths are POSIX, relative to the bundle root (``manifest.json``'s directory).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.recipe.model import Recipe


class Flavor(enum.StrEnum):
    """Which Jupyter server the bundle runs, decided from the installed versions."""

    NOTEBOOK6 = "notebook6"  # classic Notebook < 7: NotebookApp, jupyter_notebook_config.py
    JUPYTER_SERVER = "jupyter-server"  # Jupyter Server 2 (JupyterLab 4, Notebook 7): ServerApp


@dataclass(frozen=True, slots=True, kw_only=True)
class JupyterServer:
    flavor: Flavor
    version: str  # of the package that decided the flavor (notebook or jupyter-server)
    config_file: str  # the file name this server reads from a config directory
    traits: tuple[tuple[str, str], ...]  # launcher setting -> configurable trait, sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelhouseSet:
    """Wheels of the kernels' wheelhouse for one image Python (from the lock, fetched)."""

    python: str  # "3.12"
    requirements: tuple[tuple[str, str, str], ...]  # (name, version, sha256), sorted
    wheels: tuple[Path, ...]  # verified cached wheels to copy into app/share/wheelhouse


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchInputs:
    recipe: Recipe  # has a service
    arch: str  # "x86_64"
    python: str  # the interpreter relative to app/, e.g. "python/bin/python3.11"
    installed: tuple[tuple[str, str], ...]  # (canonical name, version) of installed packages
    entry_is_python: bool  # service.command[0] is a python script (a trampoline)
    platform_tags: tuple[str, ...]  # pip --platform values of the target, newest first
    wheelhouse: tuple[WheelhouseSet, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedFile:
    """One file to write: ``data``, or a copy of ``source`` (a wheel)."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    executable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchInfo:
    """What ``manifest.json`` says about launching the bundle."""

    launcher: str  # "app/bin/launch"
    service_def: str  # "service-def.json"
    s6_service: str  # "app/share/s6/services.d/<name>"
    service_ports: str  # Backend.AI's ai.backend.service-ports label value
    flavor: Flavor | None
    image_python: str  # "off" | "offer" | "install"
    wheelhouse: tuple[tuple[str, int], ...]  # (image Python minor, number of wheels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "launcher": self.launcher,
            "service_def": self.service_def,
            "s6_service": self.s6_service,
            "flavor": None if self.flavor is None else self.flavor.value,
            "image_python": self.image_python,
            "wheelhouse": dict(self.wheelhouse),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchPlan:
    files: tuple[PlannedFile, ...]  # sorted by path, no duplicates
    info: LaunchInfo
