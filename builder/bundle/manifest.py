"""The bundle manifest: model, codec and naming. Checked against ``manifest.schema.json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from builder.launch.model import LaunchInfo

BUNDLE_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InterpreterInfo:
    origin: str  # "pbs" | "imported" | "archive"
    python_version: str
    sha256: str  # of the interpreter archive used
    filename: str
    release: str | None  # PBS release for origin "pbs"


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageInfo:
    name: str
    version: str
    sha256: str  # of the wheel
    wheel: str
    license: str
    # the source distribution the wheel was built from at build time: (file name, sha256)
    sdist: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    name: str
    version: str
    summary: str
    target: str
    arch: str
    libc: str  # "gnu"
    input_digest: str  # "sha256:<hex>"
    final_root: str  # "/opt/apps/<name>"
    glibc_floor: str | None  # max GLIBC_x.y over every ELF ("2.17"); None if no ELF needs one
    glibc_floor_file: str | None  # one file (relative to the bundle) that needs that floor
    recipe_glibc_floor: str
    glibc_exempt: tuple[tuple[str, str], ...]  # (file, glibc) not counted toward the floor
    interpreter: InterpreterInfo
    packages: tuple[PackageInfo, ...]  # sorted by name
    ui: dict[str, Any]
    service: dict[str, Any] | None
    launch: LaunchInfo | None = None  # how the bundle is launched (None: no [service])
    node: dict[str, Any] | None = None  # a [node] app: runtime, npm lock, native audit, trim
    file_count: int
    unpacked_bytes: int
    # the RECORD (builder.bundle.record): {"file", "sha256", "entries"}; None: built without
    record: dict[str, Any] | None = None
    source_date_epoch: int
    builder_version: str
    # (file, arch): ELF files of another architecture under glibc_exempt patterns, not shipped
    dropped: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": BUNDLE_FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "summary": self.summary,
            "target": self.target,
            "arch": self.arch,
            "libc": self.libc,
            "input_digest": self.input_digest,
            "final_root": self.final_root,
            "glibc_floor": self.glibc_floor,
            "glibc_floor_file": self.glibc_floor_file,
            "recipe_glibc_floor": self.recipe_glibc_floor,
            "glibc_exempt": [{"file": f, "glibc": g} for f, g in self.glibc_exempt],
            "interpreter": {
                "origin": self.interpreter.origin,
                "python_version": self.interpreter.python_version,
                "sha256": self.interpreter.sha256,
                "filename": self.interpreter.filename,
                "release": self.interpreter.release,
            },
            "packages": [
                {"name": p.name, "version": p.version, "sha256": p.sha256, "wheel": p.wheel,
                 "license": p.license,
                 **({} if p.sdist is None
                    else {"built_from": {"sdist": p.sdist[0], "sha256": p.sdist[1]}})}
                for p in self.packages
            ],
            "ui": self.ui,
            "service": self.service,
            "launch": None if self.launch is None else self.launch.to_dict(),
            "labels": {} if self.launch is None
            else {"ai.backend.service-ports": self.launch.service_ports},
            **({} if self.node is None else {"node": self.node}),
            "sizes": {"files": self.file_count, "unpacked_bytes": self.unpacked_bytes},
            **({} if self.record is None else {"record": self.record}),
            "source_date_epoch": self.source_date_epoch,
            "builder_version": self.builder_version,
            **({} if not self.dropped
               else {"dropped": [{"file": f, "arch": a} for f, a in self.dropped]}),
        }


def bundle_stem(name: str, version: str, target: str, input_digest: str) -> str:
    """``<name>-<version>-<target>-<digest>``: the digest names the inputs, not the output."""
    digest = input_digest.split(":", 1)[-1][:16]
    return f"{name}-{version}-{target}-{digest}"
