"""Wheels -> prefix with pypa/installer (no pip, no target interpreter needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from packaging.utils import canonicalize_name

from builder.errors import BuilderError

INSTALLER_NAME = b"builder\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledDist:
    name: str  # canonical
    version: str
    license: str  # "UNKNOWN" when the metadata states none
    wheel: str  # file name
    sha256: str


def python_scheme(python_dir: Path, minor: str) -> dict[str, str]:
    site = python_dir / "lib" / f"python{minor}" / "site-packages"
    return {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(python_dir / "include" / f"python{minor}"),
        "scripts": str(python_dir / "bin"),
        "data": str(python_dir),
    }


def _license(metadata: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(metadata)
    expression = headers.get("License-Expression")
    if expression:
        return str(expression).strip()
    text = str(headers.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80:
        return text
    classifiers = [str(c) for c in headers.get_all("Classifier") or []
                   if str(c).startswith("License ::")]
    if classifiers:
        return "; ".join(c.split(" :: ")[-1] for c in sorted(classifiers))
    return "UNKNOWN"


def install_wheels(
    wheels: Sequence[tuple[Path, str]], *, python_dir: Path, minor: str
) -> tuple[InstalledDist, ...]:
    """Install ``(wheel path, sha256)`` pairs; scripts point at the staged interpreter for now
    (the relocate stage rewrites them)."""
    interpreter = str(python_dir / "bin" / f"python{minor}")
    destination = SchemeDictionaryDestination(
        python_scheme(python_dir, minor),
        interpreter=interpreter,
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    installed = []
    for path, sha256 in sorted(wheels, key=lambda item: item[0].name):
        try:
            with WheelFile.open(path) as source:
                metadata = source.read_dist_info("METADATA").encode()
                install(source, destination, additional_metadata={"INSTALLER": INSTALLER_NAME})
        except (InstallerError, ValueError, KeyError, OSError) as exc:
            raise BuilderError(f"cannot install wheel: {exc}", where=str(path),
                               hint="the wheel may be corrupt; delete it from the cache") from exc
        headers = BytesHeaderParser().parsebytes(metadata)
        installed.append(
            InstalledDist(
                name=canonicalize_name(str(headers["Name"])),
                version=str(headers["Version"]),
                license=_license(metadata),
                wheel=path.name,
                sha256=sha256,
            )
        )
    return tuple(sorted(installed, key=lambda d: d.name))
