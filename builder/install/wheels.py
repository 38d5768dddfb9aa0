"""Wheels -> prefix with pypa/installer, laid out the way pip lays them out.

pypa/installer writes a wheel into any scheme without running the target interpreter, so an
aarch64 bundle installs on an x86_64 build machine exactly like a native one. ``PipLikeWheel``
and ``PipLikeDestination`` teach it pip's choices for the quirks real wheels have (see their
modules); this module wires them per wheel and turns failures into errors a person can act on.
"""

from __future__ import annotations

import configparser
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

from installer import install
from installer.exceptions import InstallerError
from installer.records import parse_record_file
from packaging.utils import canonicalize_name

from builder.errors import BuilderError
from builder.install.destination import FileConflict, PipLikeDestination
from builder.install.errors import CorruptWheelError, InstallConflictError
from builder.install.replace import installed_dist_infos, remove_dist
from builder.install.source import PipLikeWheel

INSTALLER_NAME = b"builder\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledDist:
    name: str  # canonical
    version: str
    license: str  # "UNKNOWN" when the metadata states none
    wheel: str  # file name
    sha256: str


def python_scheme(python_dir: Path, minor: str, *, dist: str) -> dict[str, str]:
    """pip's ``posix_prefix`` scheme for ``--prefix python_dir`` outside a virtualenv; headers go
    to ``include/python3.X/<dist>`` (pip's ``get_scheme``: ``os.path.join(paths["include"],
    dist_name)``, the canonical name from the wheel's file name)."""
    site = python_dir / "lib" / f"python{minor}" / "site-packages"
    return {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(python_dir / "include" / f"python{minor}" / dist),
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


# what a damaged or malformed wheel raises inside zipfile and pypa/installer (its entry point
# parser asserts; zipfile raises NotImplementedError for an unknown compression method and
# RuntimeError for an encrypted member)
_MALFORMED = (InstallerError, zipfile.BadZipFile, ValueError, KeyError, AssertionError,
              configparser.Error, EOFError, NotImplementedError, RuntimeError)


def install_wheels(
    wheels: Sequence[tuple[Path, str]], *, python_dir: Path, minor: str
) -> tuple[InstalledDist, ...]:
    """Install ``(wheel path, sha256)`` pairs; scripts point at the staged interpreter for now
    (the relocate stage rewrites them)."""
    interpreter = str(python_dir / "bin" / f"python{minor}")
    site = python_dir / "lib" / f"python{minor}" / "site-packages"
    ledger: dict[Path, str] = {}
    installed = []
    for path, sha256 in sorted(wheels, key=lambda item: item[0].name):
        label = path.name
        try:
            with zipfile.ZipFile(path) as archive:
                source = PipLikeWheel(archive)
                label = f"{canonicalize_name(source.distribution)} {source.version}"
                metadata = source.read_dist_info("METADATA").encode()
                name = canonicalize_name(source.distribution)
                for previous in installed_dist_infos(site, name):  # the interpreter's copy
                    remove_dist(previous, within=python_dir)
                destination = PipLikeDestination(
                    python_scheme(python_dir, minor, dist=name),
                    interpreter=interpreter,
                    script_kind="posix",
                    bytecode_optimization_levels=(),
                    owner=label,
                    python_minor=minor,
                    ledger=ledger,
                )
                install(source, destination, additional_metadata={"INSTALLER": INSTALLER_NAME})
        except FileConflict as conflict:
            raise InstallConflictError(
                path=_shown(conflict.path, python_dir), installing=label, owner=conflict.owner,
                shipped_by=None if conflict.owner else _interpreter_dist(conflict.path, python_dir),
                wheel=path,
            ) from conflict
        except _MALFORMED as exc:
            raise CorruptWheelError(wheel=path, problem=str(exc) or type(exc).__name__) from exc
        except OSError as exc:
            raise BuilderError(
                f"cannot install {path.name}: {exc}", where=str(python_dir),
                hint="check free space and permissions of the staging directory",
            ) from exc
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


def _shown(target: Path, python_dir: Path) -> str:
    """``python/bin/x`` rather than the throw-away staging path."""
    try:
        return target.relative_to(python_dir.parent).as_posix()
    except ValueError:
        return str(target)


def _interpreter_dist(target: Path, python_dir: Path) -> str | None:
    """``"name version"`` of an interpreter-shipped distribution whose RECORD lists ``target``."""
    for record in sorted(python_dir.glob("lib/python*/site-packages/*.dist-info/RECORD")):
        site = record.parent.parent
        try:
            rows = parse_record_file(record.read_text(encoding="utf-8").splitlines())
            if any((site / row[0]).resolve() == target.resolve() for row in rows):
                name, _, version = record.parent.name[: -len(".dist-info")].rpartition("-")
                return f"{canonicalize_name(name)} {version}"
        except (OSError, UnicodeDecodeError, InstallerError):
            continue
    return None
