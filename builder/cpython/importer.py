"""``builder runtime import PREFIX``: an installed CPython -> a PBS install_only style archive.

Steps: probe the prefix, copy the kept files into a sibling staging dir, remove the host prefix
from text files, plan the vendoring of non-glibc libraries (then apply it with patchelf), write
``python/PYTHON.json`` and archive the tree deterministically.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from builder import __version__
from builder.cpython.distro import DistroFix, detect_distro, fix_distro
from builder.cpython.hostlibs import HostLibraryFinder
from builder.cpython.pip import PIP_VERSION, add_pip, fetch_pip_wheel
from builder.cpython.prefix import PLACEHOLDER, PrefixInfo, keep, probe_prefix
from builder.cpython.rewrite import (
    is_text,
    prefix_pattern,
    python_shebang,
    relocatable_script,
    replace_prefix,
)
from builder.cpython.sysroot import SysrootLibraryFinder, inner_path, resolve_host_path
from builder.cpython.tarball import write_tar_gz
from builder.cpython.vendor import (
    LIBDIR,
    LibraryFinder,
    VendorPlan,
    apply_vendoring,
    plan_vendoring,
    unresolved_needs,
)
from builder.elf import ElfInfo, Patchelf, is_elf, read_elf
from builder.errors import BuilderError, InternalError, environment_error
from builder.fsutil import canonical_json, sha256_file
from builder.scratch import claimed_dir, collect

TOP = "python"
IMPORT_FORMAT_VERSION = 1
PYTHON_JSON_VERSION = "7"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedRuntime:
    path: Path  # the archive
    sha256: str
    python_version: str
    triple: str
    vendored: tuple[str, ...]  # library names copied from the host, sorted
    distro: DistroFix | None = None  # what was changed in a distribution-patched CPython


def imported_filename(info: PrefixInfo) -> str:
    return f"cpython-{info.python_version}+imported-{info.triple}-install_only.tar.gz"


def _walk_kept(info: PrefixInfo) -> Iterator[tuple[tuple[str, ...], Path]]:
    """Kept entries of the prefix (files and symlinks; directories are implied), sorted."""
    root = info.root
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel = base.relative_to(root).parts
        dirnames[:] = sorted(
            d for d in dirnames
            if (base / d).is_symlink()
            or keep((*rel, d), is_dir=True, minor=info.minor, has_pip=info.has_pip)
        )
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            parts = (*rel, name)
            if keep(parts, is_dir=False, minor=info.minor, has_pip=info.has_pip):
                yield parts, base / name
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]


def kept_files(info: PrefixInfo) -> Iterator[tuple[tuple[str, ...], Path]]:
    """What an import of the prefix reads (for cache keys): the kept files and symlinks."""
    return _walk_kept(info)


def _copy_file(src: Path, dest: Path) -> None:
    shutil.copyfile(src, dest)
    dest.chmod(0o755 if src.stat().st_mode & 0o111 else 0o644)


Resolver = Callable[[Path], Path]


def stage_prefix(info: PrefixInfo, tree: Path, *, resolve: Resolver = Path.resolve) -> None:
    """Copy the kept files of the prefix to ``tree`` (= staging/python). ``resolve`` resolves
    symlinks (inside the sysroot when importing from one)."""
    root_real = resolve(info.root)
    kept = {parts for parts, _ in _walk_kept(info)}
    for parts, src in _walk_kept(info):
        dest = tree.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target = resolve(src)
            try:
                target_parts = target.relative_to(root_real).parts
            except ValueError:
                target_parts = ()
            if target_parts in kept:
                dest.symlink_to(os.path.relpath(tree.joinpath(*target_parts), dest.parent))
            elif target.is_file():
                _copy_file(target, dest)
            continue
        _copy_file(src, dest)
    bin_dir = tree / "bin"
    for alias in ("python3", "python"):
        if not (bin_dir / alias).exists():
            (bin_dir / alias).symlink_to(info.exe_name)


def rewrite_texts(info: PrefixInfo, tree: Path, *, prefixes: tuple[str, ...] = ()) -> None:
    """Host prefix -> ``/install`` in text files; python scripts in bin/ get the sh trampoline.
    ``prefixes``: more spellings of the prefix (its path inside a sysroot)."""
    pattern = prefix_pattern({str(info.root), str(info.root.resolve()), *prefixes})
    for dirpath, _dirs, filenames in os.walk(tree):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            data = path.read_bytes()
            if not is_text(data) or data.startswith(b"\x7fELF"):
                continue
            new = data
            if path.parent == tree / "bin" and python_shebang(data, pattern):
                new = relocatable_script(data, exe=info.exe_name)
            new = replace_prefix(new, pattern, PLACEHOLDER)
            if new != data:
                path.write_bytes(new)


def _read_tree(tree_root: Path) -> dict[str, ElfInfo]:
    """ELF facts of every regular ELF file below ``tree_root`` (keys: paths like python/...)."""
    found: dict[str, ElfInfo] = {}
    for dirpath, _dirs, filenames in os.walk(tree_root / TOP):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink() and is_elf(path):
                found[path.relative_to(tree_root).as_posix()] = read_elf(path)
    return found


def _libdir_names(tree_root: Path) -> list[str]:
    libdir = tree_root / LIBDIR
    return sorted(p.name for p in libdir.iterdir()) if libdir.is_dir() else []


def _python_json(info: PrefixInfo, plan: VendorPlan,
                 recorded: Callable[[Path], str] = str) -> str:
    return canonical_json({
        "version": PYTHON_JSON_VERSION,
        "target_triple": info.triple,
        "python_version": info.python_version,
        "python_major_minor_version": info.minor,
        "python_exe": f"install/bin/{info.exe_name}",
        "libpython_link_mode": info.link_mode,
        "builder_import": {
            "format_version": IMPORT_FORMAT_VERSION,
            "builder_version": __version__,
            "placeholder_prefix": PLACEHOLDER,
            "system_libraries": list(plan.system),
            "vendored_libraries": [
                {"name": lib.name, "host_path": recorded(lib.source),
                 "sha256": sha256_file(lib.source)}
                for lib in plan.vendored
            ],
        },
    })


def _build(
    info: PrefixInfo,
    staging: Path,
    out_dir: Path,
    *,
    finder: LibraryFinder | None,
    patchelf: Patchelf | None,
    mtime: int,
    sysroot: SysrootLibraryFinder | None = None,
    cache_dir: Path | None = None,
) -> tuple[VendorPlan, Path, str, DistroFix | None]:
    tree = staging / TOP
    try:
        tree.mkdir()
        if sysroot is None:
            stage_prefix(info, tree)
            rewrite_texts(info, tree)
        else:
            root = sysroot.root
            stage_prefix(info, tree, resolve=lambda p: resolve_host_path(root, p))
            rewrite_texts(info, tree, prefixes=(str(inner_path(root, info.root)),))
        distro = fix_distro(detect_distro(tree, info.minor), tree, info.minor)
        if distro is not None and not distro.has_pip and cache_dir is not None:
            add_pip(fetch_pip_wheel(cache_dir),
                    tree / "lib" / f"python{info.minor}" / "site-packages")
            distro = replace(distro, pip_added=PIP_VERSION)
    except OSError as exc:
        found = environment_error(exc)
        raise BuilderError(f"cannot copy the installation: {found.what}",
                           where=found.where or str(info.root), hint=found.hint) from exc
    plan = plan_vendoring(
        _read_tree(staging),
        provided=_libdir_names(staging),
        finder=finder if finder is not None else sysroot or HostLibraryFinder.from_host(),
        read=read_elf,
    )
    apply_vendoring(plan, staging, patchelf=patchelf or Patchelf.default())
    problems = unresolved_needs(_read_tree(staging), libdir=LIBDIR,
                                provided=_libdir_names(staging))
    if problems:
        raise InternalError(f"imported tree is not self-contained after vendoring: {problems}")
    dest = out_dir / imported_filename(info)
    try:
        recorded = str if sysroot is None else sysroot.recorded
        (tree / "PYTHON.json").write_text(_python_json(info, plan, recorded), encoding="utf-8")
        digest = write_tar_gz(staging, TOP, dest, mtime=mtime)
    except OSError as exc:
        raise BuilderError(f"cannot write the archive: {exc.strerror or exc}", where=str(dest),
                           hint=environment_error(exc).hint) from exc
    return plan, dest, digest, distro


def import_runtime(
    prefix: Path,
    out_dir: Path,
    *,
    source_date_epoch: int = 0,
    finder: LibraryFinder | None = None,
    patchelf: Patchelf | None = None,
    sysroot: Path | None = None,
    cache_dir: Path | None = None,
) -> ImportedRuntime:
    """Turn the CPython installed at ``prefix`` into ``out_dir/cpython-...+imported-...tar.gz``.

    Importing the same prefix twice (on an unchanged host) gives the same bytes. With
    ``sysroot``, the prefix lies in that root filesystem (``prefix`` below it, or a path inside
    it) and everything it needs is taken from there (see builder.cpython.sysroot). A
    distribution-patched CPython is fixed (builder.cpython.distro); when it has no pip, the
    pinned one is added from ``cache_dir`` (downloaded there once) if given.
    """
    root_finder = None if sysroot is None else SysrootLibraryFinder.for_root(sysroot)
    if root_finder is not None:
        prefix = sysroot_prefix(root_finder.root, prefix)
    info = probe_prefix(prefix)
    with contextlib.ExitStack() as scratch:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            collect(out_dir)  # what a killed import left there (owned scratch, as below)
            staging = scratch.enter_context(claimed_dir(out_dir, prefix=".import-"))
        except OSError as exc:
            raise BuilderError(f"cannot create the output directory: {exc}",
                               where=str(out_dir)) from exc
        plan, dest, digest, distro = _build(info, staging, out_dir, finder=finder,
                                            patchelf=patchelf, mtime=source_date_epoch,
                                            sysroot=root_finder, cache_dir=cache_dir)
    return ImportedRuntime(
        path=dest,
        sha256=digest,
        python_version=info.python_version,
        triple=info.triple,
        vendored=plan.vendored_names,
        distro=distro,
    )


def sysroot_prefix(root: Path, prefix: Path) -> Path:
    """The host path of ``prefix`` in ``root``: given below the root, or as a path inside it."""
    absolute = prefix.absolute()
    if absolute.is_relative_to(root):
        return absolute
    if prefix.is_absolute():
        return root / prefix.relative_to("/")
    raise BuilderError(f"the prefix {prefix} is not inside the sysroot", where=str(root),
                       hint="give the prefix below the sysroot (ROOT/usr) or as the path "
                       "inside it (/usr)")
