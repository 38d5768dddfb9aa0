"""Where things live in a bundle: the one home of every path the build and its consumers spell.

A bundle is ``manifest.json`` and ``service-def.json`` beside ``app/``; ``app/`` is what is
mounted read-only at ``/opt/apps/<name>``. Paths are relative (POSIX) so that the same names
serve the staging tree, the archive members and the mounted root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
SERVICE_DEF = "service-def.json"
APP = "app"
FIRST_MEMBERS = (MANIFEST, SERVICE_DEF)  # archived first: `inspect` and agents read them early

# below app/
PYTHON = PurePosixPath("python")
BIN = PurePosixPath("bin")
SHARE_LAUNCH = PurePosixPath("share/launch")
NODE = PurePosixPath("node")


@dataclass(frozen=True, slots=True)
class AppLayout:
    """Paths below ``app/`` for a bundle whose interpreter is CPython ``minor`` ("3.11")."""

    minor: str

    @property
    def python(self) -> PurePosixPath:
        return PYTHON

    @property
    def interpreter(self) -> PurePosixPath:
        """``python/bin/python3.X``: the interpreter itself (not a symlink to it)."""
        return PYTHON / "bin" / f"python{self.minor}"

    @property
    def python_bin(self) -> PurePosixPath:
        return PYTHON / "bin"

    @property
    def stdlib(self) -> PurePosixPath:
        return PYTHON / "lib" / f"python{self.minor}"

    @property
    def site_packages(self) -> PurePosixPath:
        return self.stdlib / "site-packages"

    def under(self, app: Path) -> StagedApp:
        return StagedApp(app=app, layout=self)


@dataclass(frozen=True, slots=True)
class StagedApp:
    """An ``app/`` tree on disk (staging, extracted or mounted) with its layout."""

    app: Path
    layout: AppLayout

    @property
    def python(self) -> Path:
        return self.app / self.layout.python

    @property
    def interpreter(self) -> Path:
        return self.app / self.layout.interpreter

    @property
    def python_bin(self) -> Path:
        return self.app / self.layout.python_bin

    @property
    def stdlib(self) -> Path:
        return self.app / self.layout.stdlib

    @property
    def site_packages(self) -> Path:
        return self.app / self.layout.site_packages

    @property
    def bin(self) -> Path:
        return self.app / BIN

    @property
    def node(self) -> Path:
        return self.app / NODE
