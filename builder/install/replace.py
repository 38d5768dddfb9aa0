"""A locked distribution the interpreter already ships (pip, setuptools) replaces its copy.

pip does the same: ``install_given_reqs`` (``pip/_internal/req/__init__.py``) uninstalls a
requirement that ``should_reinstall`` before installing the new wheel, and the uninstall removes
every file the old RECORD names plus the ``.pyc`` next to or cached for each ``.py``
(``req_uninstall.uninstallation_paths``), and directories left empty (``compress_for_rename``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from installer.exceptions import InstallerError
from installer.records import parse_record_file
from packaging.utils import canonicalize_name


def installed_dist_infos(site: Path, name: str) -> tuple[Path, ...]:
    """``<name>-<version>.dist-info`` folders in ``site`` for the canonical ``name``."""
    found = []
    for info in sorted(site.glob("*.dist-info")):
        dist, _, _version = info.name[: -len(".dist-info")].rpartition("-")
        if canonicalize_name(dist) == name and info.is_dir():
            found.append(info)
    return tuple(found)


def remove_dist(info: Path, *, within: Path) -> None:
    """Remove what ``info``'s RECORD names (only below ``within``), then empty directories."""
    site = info.parent
    root = Path(os.path.abspath(within))  # noqa: PTH100 - normalise without resolving links
    record = info / "RECORD"
    rows: list[str] = []
    with contextlib.suppress(OSError, UnicodeDecodeError, InstallerError):
        rows = [row[0] for row in parse_record_file(
            record.read_text(encoding="utf-8").splitlines())]
    parents: set[Path] = {info}
    for row in rows:
        path = Path(os.path.abspath(site / row))  # noqa: PTH100
        if not path.is_relative_to(root):
            continue
        victims = [path]
        if path.suffix == ".py":
            victims.append(path.with_suffix(".pyc"))
            victims += sorted((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"))
        for victim in victims:
            if victim.is_file() or victim.is_symlink():
                victim.unlink()
                parents.add(victim.parent)
    for file in sorted(info.rglob("*"), reverse=True):
        if file.is_dir() and not file.is_symlink():
            file.rmdir()
        else:
            file.unlink()
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        _prune(folder, stop=root)


def _prune(folder: Path, *, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty (never ``stop`` or above)."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): stop here
            if folder.exists():
                return
        folder = folder.parent
