"""Copy license files of installed distributions into ``app/share/licenses/<name>/``."""

from __future__ import annotations

import email.parser
import re
import shutil
from pathlib import Path

from packaging.utils import canonicalize_name

_LICENSE_NAME = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|AUTHORS|COPYRIGHT)([._-].*)?$",
                           re.IGNORECASE)


def _dist_name(dist_info: Path) -> str:
    metadata = dist_info / "METADATA"
    if metadata.is_file():
        headers = email.parser.BytesHeaderParser().parsebytes(metadata.read_bytes())
        if headers.get("Name"):
            return canonicalize_name(str(headers["Name"]))
    return canonicalize_name(dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0])


def _license_files(dist_info: Path) -> list[Path]:
    found: list[Path] = []
    licenses = dist_info / "licenses"  # PEP 639 (License-File)
    if licenses.is_dir():
        found += sorted(p for p in licenses.rglob("*") if p.is_file())
    found += sorted(p for p in dist_info.iterdir() if p.is_file() and _LICENSE_NAME.match(p.name))
    return found


def collect_licenses(app: Path, *, site_packages: Path, stdlib: Path) -> tuple[str, ...]:
    """Copy license files; returns the distribution names that had none (sorted)."""
    target = app / "share" / "licenses"
    missing: list[str] = []
    for dist_info in sorted(site_packages.glob("*.dist-info")):
        name = _dist_name(dist_info)
        files = _license_files(dist_info)
        if not files:
            missing.append(name)
            continue
        for source in files:
            relative = source.relative_to(dist_info / "licenses") if source.is_relative_to(
                dist_info / "licenses") else Path(source.name)
            dest = target / name / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
    python_license = stdlib / "LICENSE.txt"
    if python_license.is_file():
        (target / "cpython").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(python_license, target / "cpython" / "LICENSE.txt")
    else:
        missing.append("cpython")
    return tuple(sorted(missing))
