"""Fabricated bundles for the agent tests: small, made on the fly, valid or hostile.

- ``make_bundle``: a valid bundle (``manifest.json`` first, ``service-def.json``, ``app/...``)
  written by builder's own deterministic archiver, with its sidecar, optionally holding a tiny
  ELF executable compiled by ``cc`` (which gives it a real glibc floor).
- ``raw_bundle``: a ``.tar.zst`` with exactly the members given (anything a hostile archive may
  hold: traversal, links, devices, lying headers), nothing checked.
- ``manifest_dict``: a schema-valid manifest for a fabricated app tree; ``node_entry``: its
  optional ``node`` object (a Node.js app needing libstdc++).
- ``elf_with_verdefs``: the bytes of a tiny ELF shared object defining GNU symbol versions
  (``GLIBC_2.36``, ``GLIBCXX_3.4.30``), readable by pyelftools; no compiler needed.
- image roots for ``agent check``: ``put`` (a file or link inside a root), ``elf`` (just an ELF
  header), ``banner`` (glibc's version string), ``debian`` (a usrmerged multiarch root with
  libc.so.6 and optionally libstdc++.so.6).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from builder.bundle.archive import write_archive
from builder.bundle.manifest import InterpreterInfo, Manifest
from builder.bundle.record import RECORD_FILE, write_record
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


def node_entry(libstdcxx: str | None = "GLIBCXX_3.4.21") -> dict[str, Any]:
    """A schema-valid manifest ``node`` object (what a recipe's ``[node]`` app records)."""
    return {"package": "code-server@4.139.1", "runtime": "24.19.0",
            "npm_lock": "sha256:" + "0" * 64, "toolchain": "ziglang==0.17.1",
            "native_glibc_floor": "2.28", "libstdcxx": libstdcxx, "native_files": 0,
            "exempt": [], "trimmed": {}, "build_headers": [], "commands": ["code-server"]}


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
                record: bool = True, overrides: Mapping[str, Any] | None = None) -> Fabricated:
    """A valid bundle in ``out`` (``<name>-<version>-<target>-fab.tar.zst`` + sidecar), with a
    RECORD as builds write it (``record=False``: as bundles built before RECORDs)."""
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
    if service_def:
        (stage / "service-def.json").write_bytes(canonical({"name": name, "prefix": name}))
    fields: dict[str, Any] = {"glibc_floor": floor, "glibc_floor_file": floor_file}
    if record:
        sha, _size, entries = write_record(stage)
        fields["record"] = {"file": RECORD_FILE, "sha256": sha, "entries": entries}
    fields.update(overrides or {})
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink()]
    manifest = manifest_dict(name=name, version=version, files=len(files),
                             unpacked_bytes=sum(p.stat().st_size for p in files), **fields)
    (stage / "manifest.json").write_bytes(canonical(manifest))
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


# -- ELF files with GNU version definitions ---------------------------------------------------

EM_X86_64, EM_AARCH64 = 62, 183
SHT_STRTAB, SHT_GNU_VERDEF = 3, 0x6FFFFFFD
VER_FLG_BASE = 1


def _elf_hash(name: bytes) -> int:
    h = 0
    for byte in name:
        h = (h << 4) + byte
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g
    return h & 0xFFFFFFFF


def elf_with_verdefs(versions: Iterable[str], *, soname: str | None = None,
                     machine: int = EM_X86_64, tail: bytes = b"") -> bytes:
    """A 64-bit little-endian ET_DYN file whose ``.gnu.version_d`` defines ``versions``.

    ``soname`` (e.g. ``libstdc++.so.6``) becomes the base definition first, as in real
    libraries; each version has one auxiliary entry (its name). ``tail`` is appended after the
    sections (e.g. a glibc version banner). Only sections, no segments: nothing can load it,
    every reader of version definitions (pyelftools, ``readelf -V``) can.
    """
    names = ([soname] if soname else []) + list(versions)
    dynstr = b"\0"
    offsets = []
    for name in names:
        offsets.append(len(dynstr))
        dynstr += name.encode() + b"\0"
    verdef = b""
    for i, (name, offset) in enumerate(zip(names, offsets, strict=True)):
        last = i == len(names) - 1
        flags = VER_FLG_BASE if soname and i == 0 else 0
        # Elf64_Verdef (20 bytes) then its one Elf64_Verdaux (8 bytes)
        verdef += struct.pack("<HHHHIII", 1, flags, i + 1, 1, _elf_hash(name.encode()), 20,
                              0 if last else 28)
        verdef += struct.pack("<II", offset, 0)
    shstrtab = b"\0.dynstr\0.gnu.version_d\0.shstrtab\0"
    body_start = 64
    dynstr_at = body_start
    verdef_at = (dynstr_at + len(dynstr) + 7) & ~7
    shstrtab_at = verdef_at + len(verdef)
    shoff = (shstrtab_at + len(shstrtab) + 7) & ~7

    def section(name: int, kind: int, offset: int, size: int, link: int = 0, info: int = 0,
                align: int = 1) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, 0, 0, offset, size, link, info, align, 0)

    headers = (section(0, 0, 0, 0)
               + section(1, SHT_STRTAB, dynstr_at, len(dynstr))
               + section(9, SHT_GNU_VERDEF, verdef_at, len(verdef), link=1, info=len(names),
                         align=8)
               + section(24, SHT_STRTAB, shstrtab_at, len(shstrtab)))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, shoff, 0, 64, 56, 0,
                                 64, 4, 3)
    data = bytearray(header)
    data += dynstr
    data += b"\0" * (verdef_at - len(data)) + verdef + shstrtab
    data += b"\0" * (shoff - len(data)) + headers
    return bytes(data) + tail


def libstdcxx_versions(newest: str) -> list[str]:
    """``GLIBCXX_3.4`` ... ``GLIBCXX_<newest>`` plus the CXXABI_ and odd names a real
    libstdc++.so.6 defines too (which must not count)."""
    top = int(newest.split(".")[2]) if newest.count(".") == 2 else 0
    return (["CXXABI_1.3", "CXXABI_1.3.13", "GLIBCXX_3.4"]
            + [f"GLIBCXX_3.4.{n}" for n in range(1, top + 1)]
            + ["CXXABI_TM_1", "GLIBCXX_LDBL_3.4"])


# -- fabricated image roots -------------------------------------------------------------------


def elf(machine: int = EM_X86_64, tail: bytes = b"") -> bytes:
    """An ELF header with just enough for the architecture (64-bit, little-endian)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    return ident + struct.pack("<HH", 3, machine) + b"\0" * 44 + tail


def banner(version: str) -> bytes:
    return (b"\0GNU C Library (Debian GLIBC " + version.encode() + b"-13) stable release "
            b"version " + version.encode() + b".\n\0")


def put(root: Path, inner: str, data: bytes = b"", *, link: str | None = None) -> None:
    """Write ``data`` (or a link to ``link``) at ``inner``, a path inside the image ``root``
    (a leading ``/`` is the image's root, never the host's)."""
    parts = [p for p in inner.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"put: {inner!r} leaves the root")
    path = root.joinpath(*parts)
    if path.is_symlink():  # never write through a link (it may point at the host)
        raise ValueError(f"put: {inner!r} is a link in {root}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if link is not None:
        path.symlink_to(link)
    else:
        path.write_bytes(data)


def debian(root: Path, version: str = "2.31", machine: int = EM_X86_64, *,
           libstdcxx: str | None = None) -> Path:
    """A usrmerged multiarch root: ``/bin/sh``, ``libc.so.6`` (glibc ``version``) and, given
    ``libstdcxx`` (``3.4.30``), ``libstdc++.so.6`` -> ``libstdc++.so.6.0.30`` defining up to
    ``GLIBCXX_<libstdcxx>``, as Debian's libstdc++6 installs it."""
    triplet = "x86_64-linux-gnu" if machine == EM_X86_64 else "aarch64-linux-gnu"
    put(root, "lib", link="/usr/lib")  # absolute links point into the image
    put(root, "bin", link="usr/bin")
    put(root, "usr/bin/sh", link="dash")
    put(root, "usr/bin/dash", elf(machine))
    put(root, f"usr/lib/{triplet}/libc.so.6", elf(machine, banner(version)))
    if libstdcxx is not None:
        real = f"libstdc++.so.6.0.{libstdcxx.split('.')[-1]}"
        put(root, f"usr/lib/{triplet}/libstdc++.so.6", link=real)
        put(root, f"usr/lib/{triplet}/{real}",
            elf_with_verdefs(libstdcxx_versions(libstdcxx), soname="libstdc++.so.6",
                             machine=machine))
    return root
