"""What a recipe says about a Node.js application (the ``[node]`` table), as plain data.

Paths are POSIX strings relative to the *install root*, the directory that holds the root
``package.json`` and ``node_modules/``; ``main_dir`` is where the app package itself lands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from builder.errors import BuilderError

_NAME_RE = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A symlink the package's own postinstall would make (``path`` -> ``target``)."""

    path: str  # relative to the install root
    target: str  # the link's text, relative to the link's directory


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectScript:
    """A script from a (nested) project's own package.json, run after the native rebuild."""

    project: str  # relative to the install root
    script: str  # e.g. "postinstall"


@dataclass(frozen=True, slots=True, kw_only=True)
class Exemption:
    """ELF files the audit reports but does not count, with the reason a reviewer reads."""

    pattern: str  # fnmatch glob, relative to the install root
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAppSpec:
    package: str  # npm name, e.g. "code-server"
    version: str  # exact version, e.g. "4.139.1"
    # projects inside the package with their own package.json that its postinstall installs;
    # relative to the package directory, each locked by us (lockfiles/<app>/nested/<path>/)
    nested: tuple[str, ...] = ()
    # the root project's npm allowScripts policy: package name -> may its install scripts run
    allow_scripts: tuple[tuple[str, bool], ...] = ()
    links: tuple[Link, ...] = ()
    scripts: tuple[ProjectScript, ...] = ()
    # prebuilt binaries that a source build supersedes (they would be loaded first, or are dead)
    drop: tuple[str, ...] = ()
    # Debian packages unpacked (not installed) for their C headers during the native build
    build_headers: tuple[str, ...] = ()
    exempt: tuple[Exemption, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        if not _NAME_RE.match(self.package):
            problems.append(f"bad npm package name {self.package!r}")
        if not _VERSION_RE.match(self.version):
            problems.append(f"version {self.version!r} must be exact (x.y.z), not a range")
        for rel in (*self.nested, *(lk.path for lk in self.links), *self.drop,
                    *(s.project for s in self.scripts), *(e.pattern for e in self.exempt)):
            if rel.startswith("/") or ".." in rel.split("/"):
                problems.append(f"path {rel!r} must stay inside the install root")
        if problems:
            raise BuilderError("bad [node] settings: " + "; ".join(problems))

    @property
    def main_dir(self) -> str:
        return f"node_modules/{self.package}"

    @property
    def nested_dirs(self) -> tuple[str, ...]:
        """Nested project directories, relative to the install root."""
        return tuple(f"{self.main_dir}/{rel}" for rel in self.nested)

    @property
    def requirement(self) -> str:
        return f"{self.package}@{self.version}"
