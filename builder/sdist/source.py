"""A source distribution's PEP 517/518 build system, read from the archive without running it,
and its safe unpacking."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from builder.errors import BuilderError
from builder.tarsafe import TAR_ERRORS, check_member_name, open_tar_stream, safe_extract

# PEP 517's fallback when a project has no [build-system] (pip does the same)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
MAX_PYPROJECT = 1 << 20  # bytes: a pyproject.toml larger than this is not a real one


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildSystem:
    requires: tuple[str, ...]  # as written (order kept)
    backend: str
    backend_path: tuple[str, ...] = ()


def project_dir_name(archive: Path) -> str:
    """The sdist's top directory (``name-version``), from its file name."""
    name = archive.name
    for suffix in (".tar.gz", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise BuilderError("not a source distribution (.tar.gz)", where=str(archive))


def read_build_system(archive: Path) -> BuildSystem:
    """``[build-system]`` of the sdist's top-level pyproject.toml, or PEP 517's fallback."""
    if not archive.name.endswith(".tar.gz"):
        raise BuilderError("only .tar.gz source distributions can be built (PEP 625)",
                           where=str(archive),
                           hint="pin a version published as .tar.gz or as a wheel")
    text = None
    try:
        with open_tar_stream(archive) as tar:
            for member in tar:
                path = check_member_name(member.name, where=f"{archive}: {member.name}")
                if len(path.parts) == 2 and path.parts[1] == "pyproject.toml" and member.isreg():
                    if member.size > MAX_PYPROJECT:
                        raise BuilderError("pyproject.toml is implausibly large",
                                           where=f"{archive}: {member.name}")
                    handle = tar.extractfile(member)
                    text = handle.read().decode("utf-8") if handle is not None else None
                    break
    except BuilderError:
        raise
    except (UnicodeDecodeError, *TAR_ERRORS) as exc:  # type: ignore[misc]
        raise BuilderError(f"cannot read the source distribution: {exc}",
                           where=str(archive)) from exc
    return parse_build_system(text, where=f"{archive}: pyproject.toml")


def parse_build_system(text: str | None, *, where: str) -> BuildSystem:
    """PEP 518/517 rules: no file or no ``[build-system]``: the setuptools fallback; a table
    without ``requires`` is an error; without ``build-backend``: the legacy backend."""
    if text is None:
        return BuildSystem(requires=LEGACY_REQUIRES, backend=LEGACY_BACKEND)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuilderError(f"pyproject.toml is not valid TOML: {exc}", where=where) from exc
    table = data.get("build-system")
    if table is None:
        return BuildSystem(requires=LEGACY_REQUIRES, backend=LEGACY_BACKEND)
    requires = table.get("requires") if isinstance(table, dict) else None
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BuilderError("[build-system] needs requires, a list of strings (PEP 518)",
                           where=where, hint="the project's sdist is broken; pin another version")
    backend = table.get("build-backend", LEGACY_BACKEND)
    backend_path = table.get("backend-path", [])
    if not isinstance(backend, str) or not isinstance(backend_path, list) or not all(
            isinstance(p, str) for p in backend_path):
        raise BuilderError("[build-system] build-backend must be a string and backend-path a "
                           "list of strings (PEP 517)", where=where)
    for entry in backend_path:
        parts = PurePosixPath(entry).parts
        if entry.startswith("/") or ".." in parts:
            raise BuilderError(f"backend-path {entry!r} leaves the project (PEP 517)",
                               where=where)
    return BuildSystem(requires=tuple(requires), backend=backend,
                       backend_path=tuple(backend_path))


def unpack_sdist(archive: Path, dest: Path) -> Path:
    """Extract the sdist safely below ``dest`` and return its project directory."""
    dest.mkdir(parents=True, exist_ok=True)
    safe_extract(archive, dest)
    project = dest / project_dir_name(archive)
    if not project.is_dir():
        tops = sorted(p.name for p in dest.iterdir())
        if len(tops) != 1 or not (dest / tops[0]).is_dir():
            raise BuilderError("the source distribution has no single top directory",
                               where=str(archive))
        project = dest / tops[0]
    return project

