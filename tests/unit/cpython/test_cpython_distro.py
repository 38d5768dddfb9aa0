"""Distribution-patched CPythons: detected from their stdlib, fixed in the imported tree."""

from __future__ import annotations

import os
from pathlib import Path

from builder.cpython.distro import detect_distro, fix_distro

DEBIAN_SITE = '''
def getsitepackages(prefixes=None):
    if is_virtual_environment:
        sitepackages.append(os.path.join(prefix, "lib", "python3.11", "site-packages"))
    sitepackages.append(os.path.join(prefix, "lib", "python3", "dist-packages"))
'''
UPSTREAM_SITE = '''
def getsitepackages(prefixes=None):
    sitepackages.append(os.path.join(prefix, libdir, "python3.11", "site-packages"))
'''


def _tree(tmp_path: Path, site: str, *, marker: bool) -> Path:
    stdlib = tmp_path / "python/lib/python3.11"
    stdlib.mkdir(parents=True)
    (stdlib / "site.py").write_text(site)
    if marker:
        (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    return tmp_path / "python"


def test_upstream_cpython_is_left_alone(tmp_path: Path) -> None:
    tree = _tree(tmp_path, UPSTREAM_SITE, marker=False)
    assert detect_distro(tree, "3.11") is None
    assert fix_distro(None, tree, "3.11") is None
    assert sorted(p.name for p in (tree / "lib/python3.11").iterdir()) == ["site.py"]


def test_debian_site_gets_its_dist_packages_pointed_at_site_packages(tmp_path: Path) -> None:
    tree = _tree(tmp_path, DEBIAN_SITE, marker=True)
    found = detect_distro(tree, "3.11")
    assert found is not None
    assert found.dist_packages_site and found.externally_managed and not found.has_pip
    fix_distro(found, tree, "3.11")
    stdlib = tree / "lib/python3.11"
    assert os.readlink(stdlib / "dist-packages") == "site-packages"
    assert (stdlib / "site-packages").is_dir()
    assert not (stdlib / "EXTERNALLY-MANAGED").exists()
    assert any("no pip" in note for note in found.notes())


def test_marker_alone_is_dropped(tmp_path: Path) -> None:
    tree = _tree(tmp_path, UPSTREAM_SITE, marker=True)
    found = detect_distro(tree, "3.11")
    assert found is not None and not found.dist_packages_site
    fix_distro(found, tree, "3.11")
    assert not (tree / "lib/python3.11/EXTERNALLY-MANAGED").exists()
    assert not (tree / "lib/python3.11/dist-packages").exists()
