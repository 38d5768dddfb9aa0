"""Reading an image's root filesystem: its architecture, C library and libstdc++.

The image is a root filesystem on disk (an unpacked container image, a debootstrap root). Paths
inside it are resolved as the image would see them (absolute links point into the image, never
at the host). Its architecture comes from the ELF header of ``/bin/sh`` (or its C library), its
C library from ``libc.so.6`` (glibc: the version string inside it, else the ``libc-X.Y.so`` file
name, else the highest ``GLIBC_x.y`` it defines, else the dpkg status) or ``ld-musl-*.so.1``
(musl: version from the apk database when there is one). A bundle with a Node.js app also needs
the image's ``libstdc++.so.6``: the newest ``GLIBCXX_x.y.z`` that file defines is read too.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import replace
from pathlib import Path

from builder.agent.compat.model import GLIBCXX_VERDEF, ImageFacts
from builder.elf.read import LIBSTDCXX, elf_arch, highest_version_definition
from builder.errors import BuilderError

_GLIBC_BANNER = re.compile(rb"GNU C Library[^\n\x00]{0,200}?release version (\d+)\.(\d+)")
_GLIBC_FILE = re.compile(r"^libc-(\d+)\.(\d+)(?:\.\d+)?\.so$")
_GLIBC_VERDEF = re.compile(r"^GLIBC_(\d+\.\d+(?:\.\d+)?)$")
_MUSL_LOADER = re.compile(r"^ld-musl-([a-z0-9_]+)\.so\.1$")
LIB_DIRS = ("lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib")
SHELLS = ("bin/sh", "usr/bin/sh", "bin/busybox", "usr/bin/env")


def resolve_in_root(root: Path, inner: str, *, max_links: int = 40) -> Path | None:
    """The host path of ``inner`` as the image sees it (``root`` is its ``/``); None if missing."""
    parts = [p for p in inner.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            links += 1
            if links > max_links:
                return None
            target = str(candidate.readlink())
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def _inner(root: Path, path: Path) -> str:
    return "/" + path.relative_to(root).as_posix()


def _lib_dirs(root: Path) -> list[Path]:
    """The image's library directories, multiarch ones included, resolved, without repeats."""
    found: list[Path] = []
    for base in LIB_DIRS:
        resolved = resolve_in_root(root, base)
        if resolved is None or not resolved.is_dir():
            continue
        candidates = [resolved]
        try:
            names = sorted(p.name for p in resolved.iterdir()
                           if re.search(r"-linux-(gnu|musl)", p.name))
        except OSError:
            names = []
        for name in names:
            sub = resolve_in_root(root, f"{_inner(root, resolved)}/{name}")
            if sub is not None and sub.is_dir():
                candidates.append(sub)
        for path in candidates:
            if path not in found:
                found.append(path)
    return found


def _is_file_in(root: Path, path: Path) -> bool:
    real = resolve_in_root(root, _inner(root, path))
    return real is not None and real.is_file()


def _glibc_version(root: Path, libc: Path) -> tuple[tuple[int, ...] | None, str]:
    real = resolve_in_root(root, _inner(root, libc)) or libc
    try:
        data = real.read_bytes()
    except OSError:
        data = b""
    if match := _GLIBC_BANNER.search(data):
        return (int(match[1]), int(match[2])), "its version string"
    if named := _GLIBC_FILE.match(real.name):
        return (int(named[1]), int(named[2])), f"its file name {real.name}"
    if top := highest_version_definition(real, _GLIBC_VERDEF):
        return top, "the highest GLIBC_x.y it defines"
    if version := _dpkg_version(root, "libc6"):
        return version, "the dpkg status of libc6"
    return None, "no version found"


def _text_in_root(root: Path, rel: str) -> str | None:
    """The text of the image's file ``rel`` ("" when it has none), None when unreadable."""
    path = resolve_in_root(root, rel)
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path else ""
    except OSError:
        return None


def _dpkg_version(root: Path, package: str) -> tuple[int, ...] | None:
    text = _text_in_root(root, "var/lib/dpkg/status")
    if text is None:
        return None
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        match = re.match(r"^(?:\d+:)?(\d+)\.(\d+)", fields.get("Version", ""))
        if fields.get("Package") == package and match:
            return int(match[1]), int(match[2])
    return None


def _musl_version(root: Path) -> tuple[int, ...] | None:
    text = _text_in_root(root, "lib/apk/db/installed")
    if text is None:
        return None
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if "P:musl" in lines:
            for line in lines:
                if match := re.match(r"^V:(\d+)\.(\d+)\.(\d+)", line):
                    return int(match[1]), int(match[2]), int(match[3])
    return None


def _libstdcxx(root: Path, dirs: list[Path], arch: str | None
               ) -> tuple[tuple[int, ...] | None, str | None]:
    """The newest GLIBCXX_ the image's libstdc++.so.6 defines, and its path inside the image
    (None, None: there is none; a version of None: it defines no GLIBCXX_ version)."""
    found = [d / LIBSTDCXX for d in dirs if _is_file_in(root, d / LIBSTDCXX)]
    if not found:
        return None, None
    real = [resolve_in_root(root, _inner(root, p)) or p for p in found]
    pick = min(range(len(found)), key=lambda i: elf_arch(real[i]) != arch)  # its own arch
    return highest_version_definition(real[pick], GLIBCXX_VERDEF), _inner(root, found[pick])


def probe_rootfs(root: Path) -> ImageFacts:
    """Architecture, C library and libstdc++ of the image whose ``/`` is ``root``."""
    if not root.is_dir():
        raise BuilderError("not a directory", where=str(root),
                           hint="give the unpacked root filesystem of the image")
    arch = arch_from = None
    for shell in SHELLS:
        path = resolve_in_root(root, shell)
        if path is not None and path.is_file() and (found := elf_arch(path)):
            arch, arch_from = found, f"/{shell}"
            break
    dirs = _lib_dirs(root)
    looked = tuple(_inner(root, d) for d in dirs) or tuple(f"/{d}" for d in LIB_DIRS)
    glibcs = [d / "libc.so.6" for d in dirs if _is_file_in(root, d / "libc.so.6")]
    musls = sorted(p for d in dirs for p in d.glob("ld-musl-*.so.1"))
    facts = ImageFacts(root=str(root), arch=arch, arch_from=arch_from, libc=None,
                       libc_version=None, libc_from=None, looked_in=looked)
    if glibcs:
        # the image's own arch first (read inside the image: the link may be absolute)
        glibcs.sort(key=lambda p: elf_arch(resolve_in_root(root, _inner(root, p)) or p) != arch)
        libc = glibcs[0]
        version, how = _glibc_version(root, libc)
        arch = arch or elf_arch(resolve_in_root(root, _inner(root, libc)) or libc)
        arch_from = arch_from or _inner(root, libc)
        facts = replace(facts, arch=arch, arch_from=arch_from, libc="gnu", libc_version=version,
                        libc_from=f"{_inner(root, libc)} ({how})")
    elif musls:
        loader = musls[0]
        if arch is None and (match := _MUSL_LOADER.match(loader.name)):
            arch, arch_from = match[1], _inner(root, loader)
        version = _musl_version(root)
        how = "apk database" if version else "version unknown"
        facts = replace(facts, arch=arch, arch_from=arch_from, libc="musl",
                        libc_version=version, libc_from=f"{_inner(root, loader)} ({how})")
    cxx_version, cxx_from = _libstdcxx(root, dirs, facts.arch)
    return replace(facts, libstdcxx_checked=True, libstdcxx=cxx_version, libstdcxx_from=cxx_from)

