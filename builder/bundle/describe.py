"""Facts about a staged app tree: ELF arch and glibc floor, file counts."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from builder.elf import is_elf, read_elf
from builder.elf.read import ElfInfo, format_version
from builder.errors import BuilderError


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeFacts:
    file_count: int
    unpacked_bytes: int
    glibc_floor: tuple[int, ...] | None
    glibc_floor_file: str | None  # relative to the bundle root
    package_glibc_floor: tuple[int, ...] | None  # the part from installed packages
    package_glibc_floor_file: str | None
    exempt: tuple[tuple[str, str], ...]  # (file relative to the bundle, its glibc need), sorted
    dropped: tuple[tuple[str, str], ...] = ()  # (file, arch) removed by drop_foreign, sorted


def _exempted(path: Path, app: Path, exempt: tuple[str, ...]) -> bool:
    if not path.is_relative_to(app):
        return False
    rel = path.relative_to(app).as_posix()
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in exempt)


def drop_foreign(bundle_root: Path, *, arch: str,
                 exempt: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Remove the ELF files of another architecture than ``arch`` that match an ``exempt``
    pattern (fnmatch, relative to ``app/``); returns (file relative to the bundle, its arch),
    sorted, for the manifest's ``dropped`` list.

    "Pure" wheels carry such files: debugpy's py2.py3-none-any wheel ships the x86_64 helpers it
    injects into other processes. The recipe already declares them loaded only on demand (its
    ``glibc_exempt``); on a target they cannot run on they are dead weight, and outside the
    exempt patterns a foreign file still fails the build (``describe_tree``)."""
    app = bundle_root / "app"
    dropped: list[tuple[str, str]] = []
    for directory, _dirs, files in os.walk(bundle_root):
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not is_elf(path) or not _exempted(path, app, exempt):
                continue
            found = read_elf(path).arch
            if found != arch:
                dropped.append((path.relative_to(bundle_root).as_posix(), found))
    for rel, _found in dropped:
        (bundle_root / rel).unlink()
    return tuple(sorted(dropped))


def describe_tree(bundle_root: Path, *, arch: str, site_packages: Path,
                  exempt: tuple[str, ...] = ()) -> TreeFacts:
    """Walk the tree once; refuse ELF files built for another architecture.

    ELF files matching an ``exempt`` pattern (fnmatch, relative to ``app/``) are listed but not
    counted toward the glibc floor."""
    count = size = 0
    infos: list[ElfInfo] = []
    wrong_arch: list[str] = []
    for directory, _dirs, files in os.walk(bundle_root):
        for name in files:
            path = Path(directory) / name
            if path.is_symlink():
                continue
            count += 1
            size += path.stat().st_size
            if is_elf(path):
                info = read_elf(path)
                infos.append(info)
                if info.arch != arch:
                    wrong_arch.append(f"{path.relative_to(bundle_root)} ({info.arch})")
    if wrong_arch:
        shown = "\n  ".join(sorted(wrong_arch)[:20])
        raise BuilderError(
            f"{len(wrong_arch)} ELF file(s) are not built for {arch}:\n  {shown}",
            where=str(bundle_root),
            hint="the interpreter given with --python-from or a wheel is for another "
            "architecture than the target (files a recipe exempts with glibc_exempt are "
            "dropped instead)",
        )

    def floor(selected: list[ElfInfo]) -> tuple[tuple[int, ...] | None, str | None]:
        best: ElfInfo | None = None
        for info in sorted(selected, key=lambda i: str(i.path)):
            if info.max_glibc and (best is None or info.max_glibc > (best.max_glibc or ())):
                best = info
        if best is None:
            return None, None
        return best.max_glibc, best.path.relative_to(bundle_root).as_posix()

    app = bundle_root / "app"
    exempted = [i for i in infos if _exempted(i.path, app, exempt)]
    counted = [i for i in infos if i not in exempted]
    total, total_file = floor(counted)
    packages, packages_file = floor([i for i in counted if i.path.is_relative_to(site_packages)])
    return TreeFacts(
        file_count=count,
        unpacked_bytes=size,
        glibc_floor=total,
        glibc_floor_file=total_file,
        package_glibc_floor=packages,
        package_glibc_floor_file=packages_file,
        exempt=tuple(sorted(
            (i.path.relative_to(bundle_root).as_posix(), format_version(i.max_glibc))
            for i in exempted if i.max_glibc
        )),
    )


def version_text(version: tuple[int, ...] | None) -> str | None:
    return None if version is None else format_version(version)
