"""Distribution-patched CPythons (Debian, Ubuntu): recognising them and making their import work.

Debian patches ``site`` so that, outside a virtual environment, it never adds
``<prefix>/lib/python3.X/site-packages`` to ``sys.path``; it adds ``dist-packages`` directories
instead (``<prefix>/local/lib/python3.X/dist-packages``, ``<prefix>/lib/python3/dist-packages``,
``<prefix>/lib/python3.X/dist-packages``). Python 3.11 freezes ``site`` into the executable, so
patching ``site.py`` in the imported tree would change nothing (unless every start passed
``-X frozen_modules=off``). It also marks the stdlib ``EXTERNALLY-MANAGED`` (PEP 668) and ships
no pip in it.

The fix works with the frozen ``site`` instead of against it: the imported tree gets
``lib/python3.X/dist-packages`` as a relative symlink to ``site-packages``, which Debian's site
adds with ``addsitedir`` (so ``.pth`` files of the installed packages are processed, as with
upstream CPython). Builder installs into ``site-packages`` as for any interpreter; the bundle
imports from it through the link. ``EXTERNALLY-MANAGED`` is dropped: the bundle's interpreter is
the app's own, no distribution manages it. A missing pip is added by the importer (pinned, see
builder.cpython.pip).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.fsutil import rmtree

MARKER = "EXTERNALLY-MANAGED"
LINK = "dist-packages"


@dataclass(frozen=True, slots=True, kw_only=True)
class DistroFix:
    """What was found in a distribution-patched stdlib and changed in the imported tree."""

    dist_packages_site: bool  # site.py adds dist-packages, not site-packages
    externally_managed: bool  # the stdlib had EXTERNALLY-MANAGED (dropped)
    has_pip: bool
    pip_added: str | None = None  # the version of the pinned pip the import added

    def notes(self) -> list[str]:
        lines = []
        if self.dist_packages_site:
            lines.append(f"distribution-patched site (dist-packages): {LINK} -> site-packages "
                         "added so the bundle's packages are on sys.path")
        if self.externally_managed:
            lines.append(f"{MARKER} dropped (the bundle's interpreter is its own)")
        if self.pip_added:
            lines.append(f"pip {self.pip_added} (pinned) added: the interpreter had none")
        elif not self.has_pip:
            lines.append("no pip in the interpreter: recipes whose launcher installs a "
                         "wheelhouse cannot use it")
        return lines


def stdlib_of(tree: Path, minor: str) -> Path:
    return tree / "lib" / f"python{minor}"


def site_uses_dist_packages(site_source: str) -> bool:
    """Debian's ``getsitepackages`` adds site-packages only in a virtual environment."""
    return "dist-packages" in site_source and "is_virtual_environment" in site_source


def detect_distro(tree: Path, minor: str) -> DistroFix | None:
    """The distribution patches of the staged stdlib in ``tree``, or None for an upstream one."""
    stdlib = stdlib_of(tree, minor)
    try:
        site_source = (stdlib / "site.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        site_source = ""
    patched = site_uses_dist_packages(site_source)
    marker = (stdlib / MARKER).is_file()
    if not patched and not marker:
        return None
    return DistroFix(dist_packages_site=patched, externally_managed=marker,
                     has_pip=(stdlib / "site-packages" / "pip").is_dir())


def fix_distro(found: DistroFix | None, tree: Path, minor: str) -> DistroFix | None:
    """Apply the fix for ``found`` (from ``detect_distro``) to the staged ``tree``."""
    if found is None:
        return None
    stdlib = stdlib_of(tree, minor)
    if found.externally_managed:
        (stdlib / MARKER).unlink(missing_ok=True)
    if found.dist_packages_site:
        (stdlib / "site-packages").mkdir(exist_ok=True)
        link = stdlib / LINK
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            rmtree(link)
        link.symlink_to("site-packages")
    return found
