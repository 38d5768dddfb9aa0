"""Fabricated bundles for the agent tests: small, made on the fly, valid or hostile.

- ``make_bundle``: a valid bundle (``manifest.json`` first, ``service-def.json``, ``app/...``)
  written by builder's own deterministic archiver, with its sidecar, optionally holding a tiny
  ELF executable compiled by ``cc`` (which gives it a real glibc floor).
- ``raw_bundle``: a ``.tar.zst`` with exactly the members given (anything a hostile archive may
  hold: traversal, links, devices, lying headers), nothing checked.
- ``manifest_dict``: a schema-valid manifest for a fabricated app tree.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from builder.bundle.archive import write_archive
from builder.bundle.manifest import InterpreterInfo, Manifest
from builder.elf import read_elf
from builder.elf.read import format_version

X86 = "x86_64-unknown-linux-gnu"
RUN_SCRIPT = b"#!/bin/sh\necho demo\n"
DATA = b"some data\n"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_dict(*, name: str = "demo", version: str = "1.0", files: int = 2,
                  unpacked_bytes: int = len(RUN_SCRIPT) + len(DATA),
                  glibc_floor: str | None = None, glibc_floor_file: str | None = None,
                  target: str = X86, **overrides: Any) -> dict[str, Any]:
    arch, _, _, libc = target.split("-")
    manifest = Manifest(
        name=name, version=version, summary=f"{name}, fabricated for the agent tests",
        target=target, arch=arch, libc=libc,
        input_digest="sha256:" + hashlib.sha256(f"{name}-{version}".encode()).hexdigest(),
        final_root=f"/opt/apps/{name}", glibc_floor=glibc_floor,
        glibc_floor_file=glibc_floor_file, recipe_glibc_floor="2.17", glibc_exempt=(),
        interpreter=InterpreterInfo(origin="imported", python_version="3.11.7",
                                    sha256="0" * 64, filename="python.tar.gz", release=None),
        packages=(), ui={"name": name.title(), "kind": "webapp"},
        service={"command": ["bin/run"], "protocol": "http", "port": 8080},
        file_count=files, unpacked_bytes=unpacked_bytes, source_date_epoch=315532800,
        builder_version="0.1.0",
    ).to_dict()
    manifest.update(overrides)
    return manifest


def canonical(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2) + "\n").encode()


@dataclass
class Fabricated:
    archive: Path
    sidecar: Path
    sha256: str
    size: int
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])


def tiny_elf(dest: Path) -> Path:
    """A small dynamically linked executable (needs this host's glibc: GLIBC_2.34 or so)."""
    if shutil.which("cc") is None:
        import pytest

        pytest.skip("no C compiler (cc)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cc", "-O1", "-o", str(dest), "-x", "c", "-"], check=True,
                   input=b'#include <stdio.h>\nint main(void){puts("tiny elf ok");return 0;}\n')
    return dest


def make_bundle(out: Path, *, name: str = "demo", version: str = "1.0", extra_files: int = 0,
                file_size: int = 64, elf: Path | None = None, service_def: bool = True,
                overrides: Mapping[str, Any] | None = None) -> Fabricated:
    """A valid bundle in ``out`` (``<name>-<version>-<target>-fab.tar.zst`` + sidecar)."""
    stage = out / f".stage-{name}-{version}"
    app = stage / "app"
    (app / "bin").mkdir(parents=True)
    (app / "lib").mkdir()
    run = app / "bin" / "run"
    run.write_bytes(RUN_SCRIPT)
    run.chmod(0o755)
    (app / "bin" / "run-link").symlink_to("run")
    (app / "lib" / "data.txt").write_bytes(DATA)
    for i in range(extra_files):
        sub = app / "lib" / f"d{i // 100:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:05d}.txt").write_bytes(bytes([65 + i % 26]) * file_size)
    floor = floor_file = None
    if elf is not None:
        shutil.copy2(elf, app / "bin" / "tiny")
        info = read_elf(app / "bin" / "tiny")
        floor = format_version(info.max_glibc) if info.max_glibc else None
        floor_file = "app/bin/tiny"
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink()]
    fields: dict[str, Any] = {"glibc_floor": floor, "glibc_floor_file": floor_file,
                              **dict(overrides or {})}
    manifest = manifest_dict(name=name, version=version, files=len(files),
                             unpacked_bytes=sum(p.stat().st_size for p in files), **fields)
    (stage / "manifest.json").write_bytes(canonical(manifest))
    if service_def:
        (stage / "service-def.json").write_bytes(canonical({"name": name, "prefix": name}))
    archive = out / f"{name}-{version}-{manifest['target']}-fab.tar.zst"
    write_archive(stage, archive)
    shutil.rmtree(stage)
    return _with_sidecar(archive, manifest)


def _with_sidecar(archive: Path, manifest: dict[str, Any]) -> Fabricated:
    sha, size = sha256_of(archive), archive.stat().st_size
    sidecar = archive.with_name(archive.name[: -len(".tar.zst")] + ".json")
    sidecar.write_bytes(canonical({**manifest, "archive": {"filename": archive.name,
                                                           "sha256": sha, "size": size}}))
    return Fabricated(archive=archive, sidecar=sidecar, sha256=sha, size=size, manifest=manifest)


# -- hostile archives -------------------------------------------------------------------------


@dataclass(frozen=True)
class M:
    """One raw tar member; ``claimed_size`` writes a header that lies about its data."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644
    claimed_size: int | None = None
    pax: dict[str, str] = field(default_factory=dict)


def dir_(name: str) -> M:
    return M(name, type=tarfile.DIRTYPE, mode=0o755)


def link(name: str, target: str) -> M:
    return M(name, type=tarfile.SYMTYPE, linkname=target, mode=0o777)


def manifest_member(manifest: Mapping[str, Any] | bytes) -> M:
    data = manifest if isinstance(manifest, bytes) else canonical(dict(manifest))
    return M("manifest.json", data)


def base_members() -> list[M]:
    """The members of a valid bundle matching ``manifest_dict()``'s defaults, manifest aside."""
    return [dir_("app"), dir_("app/bin"), M("app/bin/run", RUN_SCRIPT, mode=0o755),
            link("app/bin/run-link", "run"), dir_("app/lib"), M("app/lib/data.txt", DATA)]


def tar_bytes(members: Iterable[M], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.mode, info.linkname, info.mtime = m.type, m.mode, m.linkname, 0
            info.pax_headers = dict(m.pax)
            if m.claimed_size is not None:  # a header promising more than follows
                info.size = m.claimed_size
                buf.write(info.tobuf(fmt, tar.encoding, tar.errors))  # type: ignore[arg-type]
                buf.write(m.data.ljust(512, b"\0"))
                tar.offset = buf.tell()  # tarfile's own bookkeeping; the archive ends short
                continue
            if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def raw_bundle(dest: Path, members: Iterable[M] | bytes, *, compress: bool = True,
               fmt: int = tarfile.PAX_FORMAT) -> tuple[Path, str]:
    """Write exactly these members (or these bytes) as ``dest``; returns (path, sha256)."""
    data = members if isinstance(members, bytes) else tar_bytes(members, fmt=fmt)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return dest, sha256_of(dest)


def sidecar_for(archive: Path, manifest: Mapping[str, Any], *, size: int | None = None,
                sha256: str | None = None) -> Path:
    sidecar = archive.with_name(archive.name[: -len(".tar.zst")] + ".json")
    sidecar.write_bytes(canonical({**manifest, "archive": {
        "filename": archive.name, "sha256": sha256 or sha256_of(archive),
        "size": archive.stat().st_size if size is None else size}}))
    return sidecar
