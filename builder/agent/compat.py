"""``builder agent check``: does a bundle fit a target image? Read from the image's own files.

The image is a root filesystem on disk (an unpacked container image, a debootstrap root). Paths
inside it are resolved as the image would see them (absolute links point into the image, never
at the host). Its architecture comes from the ELF header of ``/bin/sh`` (or its C library), its
C library from ``libc.so.6`` (glibc: the version string inside it, else the ``libc-X.Y.so`` file
name, else the highest ``GLIBC_x.y`` it defines, else the dpkg status) or ``ld-musl-*.so.1``
(musl: version from the apk database when there is one). A bundle with a Node.js app also needs
the image's ``libstdc++.so.6`` (its ``node`` links it): the newest ``GLIBCXX_x.y.z`` that file
defines must reach the one the manifest's ``node.libstdcxx`` names.

The verdict is pure (:func:`check_compat`) and says why, in numbers.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from builder.agent.store import Store
from builder.bundle.inspect import inspect_bundle
from builder.elf.read import (
    LIBSTDCXX,
    elf_arch,
    format_version,
    highest_version_definition,
    parse_version,
)
from builder.errors import BuilderError

_GLIBC_BANNER = re.compile(rb"GNU C Library[^\n\x00]{0,200}?release version (\d+)\.(\d+)")
_GLIBC_FILE = re.compile(r"^libc-(\d+)\.(\d+)(?:\.\d+)?\.so$")
_GLIBC_VERDEF = re.compile(r"^GLIBC_(\d+\.\d+(?:\.\d+)?)$")
_GLIBCXX_VERDEF = re.compile(r"^GLIBCXX_(\d+\.\d+(?:\.\d+)?)$")
_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
#: what a user installs to get ``libstdc++.so.6`` (the hint of a missing one)
LIBSTDCXX_HINT = ("install libstdc++6 in the image (Debian, Ubuntu; the package is called "
                  "libstdc++ on Alpine, Fedora and RHEL)")
_MUSL_LOADER = re.compile(r"^ld-musl-([a-z0-9_]+)\.so\.1$")
LIB_DIRS = ("lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib")
SHELLS = ("bin/sh", "usr/bin/sh", "bin/busybox", "usr/bin/env")


class Verdict(StrEnum):
    COMPATIBLE = "compatible"
    INCOMPATIBLE = "incompatible"
    UNKNOWN = "unknown"


#: ``builder agent check`` exit codes (1 error and 2 usage, as every command)
EXIT_CODES = {Verdict.COMPATIBLE: 0, Verdict.INCOMPATIBLE: 3, Verdict.UNKNOWN: 4}


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleNeeds:
    name: str
    version: str
    target: str
    arch: str
    libc: str  # "gnu" | "musl"
    glibc_floor: tuple[int, ...] | None
    glibc_floor_file: str | None
    #: the newest GLIBCXX_x.y.z needed from the image's libstdc++.so.6 (None: no libstdc++)
    libstdcxx: tuple[int, ...] | None = None
    libstdcxx_for: str | None = None  # who needs it ("Node.js")

    @classmethod
    def from_manifest(cls, m: dict[str, Any], *, where: str) -> BundleNeeds:
        libstdcxx = _node_libstdcxx(m.get("node"), where=where)
        try:
            floor = m["glibc_floor"]
            return cls(name=str(m["name"]), version=str(m["version"]), target=str(m["target"]),
                       arch=str(m["arch"]), libc=str(m["libc"]),
                       glibc_floor=parse_version(floor) if floor else None,
                       glibc_floor_file=m.get("glibc_floor_file"), libstdcxx=libstdcxx,
                       libstdcxx_for="Node.js" if libstdcxx else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise BuilderError(f"the manifest lacks a usable {exc}", where=where,
                               hint="is this a builder bundle?") from exc


def _node_libstdcxx(node: object, *, where: str) -> tuple[int, ...] | None:
    """``node.libstdcxx`` of a manifest (``"GLIBCXX_3.4.21"``); None without node or need."""
    if node is None:
        return None
    if not isinstance(node, dict):
        raise BuilderError(f"the manifest's node is not an object: {node!r}", where=where,
                           hint="is this a builder bundle?")
    value = node.get("libstdcxx")
    if value is None:
        return None
    match = _GLIBCXX_VERDEF.match(value) if isinstance(value, str) else None
    if match is None:
        raise BuilderError(f"the manifest's node.libstdcxx is not a GLIBCXX_x.y.z version: "
                           f"{value!r}", where=where,
                           hint="the bundle's manifest is damaged; build the bundle again")
    return parse_version(match[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageFacts:
    root: str | None  # None when given as numbers on the command line
    arch: str | None
    arch_from: str | None
    libc: str | None  # "gnu" | "musl" | None (none found)
    libc_version: tuple[int, ...] | None
    libc_from: str | None
    looked_in: tuple[str, ...] = ()
    #: libstdc++.so.6: False when nobody looked (numbers without ``--libstdcxx``)
    libstdcxx_checked: bool = False
    libstdcxx: tuple[int, ...] | None = None  # the newest GLIBCXX_x.y.z it defines
    libstdcxx_from: str | None = None  # the file (inside the image) or "--libstdcxx"; None: none


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    verdict: Verdict
    reasons: tuple[str, ...]
    bundle: BundleNeeds
    image: ImageFacts
    hints: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


# -- reading the image ----------------------------------------------------------------------------


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


def _dpkg_version(root: Path, package: str) -> tuple[int, ...] | None:
    status = resolve_in_root(root, "var/lib/dpkg/status")
    try:
        text = status.read_text(encoding="utf-8", errors="replace") if status else ""
    except OSError:
        return None
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        match = re.match(r"^(?:\d+:)?(\d+)\.(\d+)", fields.get("Version", ""))
        if fields.get("Package") == package and match:
            return int(match[1]), int(match[2])
    return None


def _musl_version(root: Path) -> tuple[int, ...] | None:
    db = resolve_in_root(root, "lib/apk/db/installed")
    try:
        text = db.read_text(encoding="utf-8", errors="replace") if db else ""
    except OSError:
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
    return highest_version_definition(real[pick], _GLIBCXX_VERDEF), _inner(root, found[pick])


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


def image_from_numbers(*, arch: str, libc: str, version: str | None,
                       libstdcxx: str | None = None) -> ImageFacts:
    """The image as ``--arch``, ``--glibc``/``--musl`` and ``--libstdcxx`` describe it
    (``libstdcxx``: the newest GLIBCXX_ its libstdc++ defines, ``3.4.30`` or
    ``GLIBCXX_3.4.30``; None: not said, the libstdc++ need is not checked)."""
    cxx = None
    if libstdcxx is not None:
        bare = libstdcxx.removeprefix("GLIBCXX_")
        if not _VERSION.match(bare):
            raise BuilderError(f"--libstdcxx takes a version like 3.4.30, not {libstdcxx!r}")
        cxx = parse_version(bare)
    return ImageFacts(root=None, arch=arch, arch_from="--arch", libc=libc,
                      libc_version=parse_version(version) if version else None,
                      libc_from=f"--{'glibc' if libc == 'gnu' else 'musl'}",
                      libstdcxx_checked=cxx is not None, libstdcxx=cxx,
                      libstdcxx_from="--libstdcxx" if cxx is not None else None)


# -- the verdict ----------------------------------------------------------------------------------


def _v(version: tuple[int, ...] | None) -> str:
    return format_version(version) if version else "?"


def _libc_name(libc: str | None, version: tuple[int, ...] | None) -> str:
    if libc is None:
        return "no C library"
    name = "glibc" if libc == "gnu" else "musl"
    return f"{name} {_v(version)}" if version else f"{name} (version unknown)"


def check_compat(bundle: BundleNeeds, image: ImageFacts) -> CheckResult:
    bad: list[str] = []
    unsure: list[str] = []
    good: list[str] = []
    matches = None
    if image.arch is None:
        unsure.append("cannot tell the image's architecture (no ELF /bin/sh or C library)")
    elif image.arch != bundle.arch:
        bad.append(f"the bundle is built for {bundle.arch}, the image is {image.arch} "
                   f"(from {image.arch_from})")
    else:
        matches = f"architecture {image.arch} matches"
    needs = (f"glibc {_v(bundle.glibc_floor)}" if bundle.libc == "gnu" and bundle.glibc_floor
             else "glibc" if bundle.libc == "gnu" else "musl")
    culprit = f" ({bundle.glibc_floor_file})" if bundle.glibc_floor_file else ""
    if image.libc is None:
        unsure.append(f"no C library found in the image (looked for libc.so.6 and "
                      f"ld-musl-*.so.1 in {', '.join(image.looked_in)}); the bundle needs "
                      f"{needs}")
    elif image.libc != bundle.libc:
        bad.append(f"the bundle needs {needs}, the image has "
                   f"{_libc_name(image.libc, image.libc_version)} (from {image.libc_from})")
    elif bundle.libc == "gnu" and bundle.glibc_floor is not None:
        if image.libc_version is None:
            unsure.append(f"needs glibc {_v(bundle.glibc_floor)}{culprit}, the image's glibc "
                          f"version is unknown ({image.libc_from})")
        elif image.libc_version < bundle.glibc_floor:
            bad.append(f"needs glibc {_v(bundle.glibc_floor)}{culprit}, image has "
                       f"{_v(image.libc_version)} (from {image.libc_from})")
        else:
            good.append(f"needs glibc {_v(bundle.glibc_floor)}, image has "
                        f"{_v(image.libc_version)} (from {image.libc_from})")
    else:
        good.append(f"needs {needs}, image has {_libc_name(image.libc, image.libc_version)}")
    notes: list[str] = []
    hints = _check_libstdcxx(bundle, image, bad=bad, unsure=unsure, good=good, notes=notes)
    verdict = (Verdict.INCOMPATIBLE if bad else Verdict.UNKNOWN if unsure
               else Verdict.COMPATIBLE)
    if matches:
        good.append(matches)
    return CheckResult(verdict=verdict, reasons=tuple(bad + unsure + notes + good),
                       bundle=bundle, image=image, hints=hints)


def _check_libstdcxx(bundle: BundleNeeds, image: ImageFacts, *, bad: list[str],
                     unsure: list[str], good: list[str], notes: list[str]) -> tuple[str, ...]:
    """The libstdc++ need, when the bundle has one: adds reasons, returns hints."""
    if bundle.libstdcxx is None:
        return ()
    need = f"GLIBCXX_{_v(bundle.libstdcxx)}"
    who = f" ({bundle.libstdcxx_for})" if bundle.libstdcxx_for else ""
    if not image.libstdcxx_checked:
        notes.append(f"needs {LIBSTDCXX} with {need}{who}: not checked (give --libstdcxx X.Y.Z, "
                     f"the newest GLIBCXX_ the image's {LIBSTDCXX} defines, or --rootfs)")
    elif image.libstdcxx_from is None:
        bad.append(f"needs {LIBSTDCXX} with {need}{who}, the image has no {LIBSTDCXX} "
                   f"(looked in {', '.join(image.looked_in)})")
        return (LIBSTDCXX_HINT,)
    elif image.libstdcxx is None:
        unsure.append(f"needs {LIBSTDCXX} with {need}{who}, the image's {LIBSTDCXX} defines no "
                      f"GLIBCXX_ version ({image.libstdcxx_from})")
    elif image.libstdcxx < bundle.libstdcxx:
        bad.append(f"needs {LIBSTDCXX} with {need}{who}, image has GLIBCXX_"
                   f"{_v(image.libstdcxx)} (from {image.libstdcxx_from})")
    else:
        good.append(f"needs {LIBSTDCXX} with {need}, image has GLIBCXX_{_v(image.libstdcxx)} "
                    f"(from {image.libstdcxx_from})")
    return ()


def result_to_dict(result: CheckResult) -> dict[str, Any]:
    b, i = result.bundle, result.image
    return {
        "verdict": str(result.verdict), "exit_code": result.exit_code,
        "reasons": list(result.reasons), "hints": list(result.hints),
        "bundle": {"name": b.name, "version": b.version, "target": b.target, "arch": b.arch,
                   "libc": b.libc, "glibc_floor": _v(b.glibc_floor) if b.glibc_floor else None,
                   "glibc_floor_file": b.glibc_floor_file,
                   "libstdcxx": _v(b.libstdcxx) if b.libstdcxx else None,
                   "libstdcxx_for": b.libstdcxx_for},
        "image": {"root": i.root, "arch": i.arch, "arch_from": i.arch_from, "libc": i.libc,
                  "libc_version": _v(i.libc_version) if i.libc_version else None,
                  "libc_from": i.libc_from, "libstdcxx_checked": i.libstdcxx_checked,
                  "libstdcxx": _v(i.libstdcxx) if i.libstdcxx else None,
                  "libstdcxx_from": i.libstdcxx_from},
    }


def render_result(result: CheckResult) -> str:
    b = result.bundle
    where = result.image.root or "the image"
    head = f"{result.verdict}: {b.name} {b.version} ({b.target}) on {where}"
    return "\n".join([head, *(f"  - {r}" for r in result.reasons),
                      *(f"  hint: {h}" for h in result.hints)])


def load_bundle_needs(ref: str, *, store_root: Path | None) -> BundleNeeds:
    """What a bundle needs, from an archive, its sidecar, an entry directory or a store name."""
    path = Path(ref)
    if path.is_dir():
        return BundleNeeds.from_manifest(inspect_bundle(path / "manifest.json"), where=ref)
    if path.is_file():
        return BundleNeeds.from_manifest(inspect_bundle(path), where=ref)
    if store_root is None:
        raise BuilderError("no such bundle file", where=ref,
                           hint="give a .tar.zst, its sidecar .json, or a name with --store DIR")
    store = Store(root=store_root)
    record = store.resolve(ref)
    entry = store.entry_path(record.sha256)
    return BundleNeeds.from_manifest(inspect_bundle(entry / "manifest.json"), where=str(entry))
