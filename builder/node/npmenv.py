"""npm cut off from the host: own config files, own cache, explicit registry, no host variables.

Traps this avoids (each seen on the build machines):
- a host ``~/.npmrc`` with ``omit-lockfile-registry-resolved=true`` writes locks without
  ``resolved`` URLs, and ``nodedir=/usr`` points node-gyp at the host's Node headers;
- ``npm_config_*``/``NPM_CONFIG_*`` variables override any file;
- ``userconfig`` and ``globalconfig`` cannot both be ``/dev/null`` (npm refuses to load one file
  twice), so both are real files in a config directory of ours;
- the host's ``node`` on PATH (Node 20 here) running the wheel's scripts.

The TLS trust of the host (``NODE_EXTRA_CA_CERTS``, ``SSL_CERT_FILE``) and proxy variables are
kept: they are how the machine reaches the registry, not npm configuration.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.node.nodejs_wheel import NodeRuntime

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
# host variables that change what npm, node or node-gyp do
_DROP_PREFIXES = ("npm_", "NPM_", "YARN_", "PNPM_", "COREPACK_", "PYTHON", "VIRTUAL_ENV", "PIP_")
_DROP_KEYS = frozenset({
    "NODE_OPTIONS", "NODE_PATH", "NODE_ENV", "PREFIX", "INIT_CWD", "CFLAGS", "CXXFLAGS",
    "CPPFLAGS", "LDFLAGS", "CC", "CXX", "LINK", "AR", "RANLIB", "MAKEFLAGS", "JOBS",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class NpmSettings:
    registry: str = DEFAULT_REGISTRY
    cache_dir: Path  # npm's content-addressed cache (integrity-checked on every read)
    offline: bool = False  # True for every step after the downloads: proves nothing is fetched
    strict_allow_scripts: bool = True  # an install script no allowScripts entry covers fails

    def npmrc(self) -> str:
        """The ``userconfig`` file: every setting explicit, sorted, one per line."""
        values = {
            "audit": "false",
            "cache": str(self.cache_dir),
            "engine-strict": "true",
            "fund": "false",
            "foreground-scripts": "true",
            "offline": "true" if self.offline else "false",
            "omit-lockfile-registry-resolved": "false",
            "registry": self.registry,
            "strict-allow-scripts": "true" if self.strict_allow_scripts else "false",
            "update-notifier": "false",
        }
        return "".join(f"{key}={value}\n" for key, value in sorted(values.items()))


def write_npm_config(config_dir: Path, settings: NpmSettings) -> tuple[Path, Path]:
    """Write ``npmrc`` (ours) and ``global-npmrc`` (empty); return both paths."""
    config_dir.mkdir(parents=True, exist_ok=True)
    user, global_ = config_dir / "npmrc", config_dir / "global-npmrc"
    user.write_text(settings.npmrc(), encoding="utf-8")
    global_.write_text("", encoding="utf-8")
    return user, global_


def isolated_npm_env(
    *,
    runtime: NodeRuntime,
    config_dir: Path,
    settings: NpmSettings,
    tool_dirs: tuple[Path, ...] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for ``node npm-cli.js`` that reads no host npm configuration.

    ``tool_dirs`` come first on PATH (the npm/node shim directory, the zig wrappers), then the
    runtime's ``bin``, then the host PATH (make, sh, python3 for gyp).
    """
    source = os.environ if base is None else base
    env = {
        key: value for key, value in source.items()
        if key not in _DROP_KEYS and not key.startswith(_DROP_PREFIXES)
    }
    user, global_ = write_npm_config(config_dir, settings)
    home = config_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    path = [str(p) for p in tool_dirs] + [str(runtime.node.parent)]
    if source.get("PATH"):
        path.append(source["PATH"])
    env.update({
        "PATH": os.pathsep.join(path),
        "HOME": str(home),
        "npm_config_userconfig": str(user),
        "npm_config_globalconfig": str(global_),
        "npm_config_cache": str(settings.cache_dir),
        "npm_config_registry": settings.registry,
        "npm_config_offline": "true" if settings.offline else "false",
    })
    return env


def node_shim_dir(dest: Path, runtime: NodeRuntime) -> Path:
    """A directory with ``node`` and a working ``npm``, first on PATH for lifecycle scripts.

    Scripts run ``node ...`` and ``npm ...`` by name (code-server's postinstall, parcel's
    ``node-gyp`` spawn); these must be the bundled runtime, never the host's.
    """
    dest.mkdir(parents=True, exist_ok=True)
    node = dest / "node"
    node.unlink(missing_ok=True)
    node.symlink_to(runtime.node)
    npm = dest / "npm"
    npm.write_text(
        f"#!/bin/sh\nexec {shlex.quote(str(runtime.node))} {shlex.quote(str(runtime.npm_cli))} "
        '"$@"\n',
        encoding="utf-8",
    )
    npm.chmod(0o755)
    return dest
