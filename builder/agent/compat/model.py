"""The facts ``builder agent check`` compares: a bundle's needs, an image's facts, the verdict.

A bundle with a Node.js app also needs the image's ``libstdc++.so.6`` (its ``node`` links it):
the manifest's ``node.libstdcxx`` names the newest ``GLIBCXX_x.y.z`` it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from builder.elf.read import parse_version
from builder.errors import BuilderError

#: a ``GLIBCXX_x.y.z`` version definition (libstdc++) or need (a manifest's ``node.libstdcxx``)
GLIBCXX_VERDEF = re.compile(r"^GLIBCXX_(\d+\.\d+(?:\.\d+)?)$")
_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")


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
    match = GLIBCXX_VERDEF.match(value) if isinstance(value, str) else None
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

