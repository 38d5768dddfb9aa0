"""The image layer: the bundle's ``app/`` re-rooted at ``/``, as a deterministic ``tar+gzip``.

The bundle's tar stream is read once and re-written member by member (nothing is extracted):
``app/bin/x`` becomes ``bin/x``, every header is normalised again (mtime = the manifest's
SOURCE_DATE_EPOCH, uid/gid 0, no owner names, modes 0644/0755/0777) and the gzip header has no
time and no file name. The layer's digest therefore depends only on the bundle's content. The
top-level files (``manifest.json``, ``service-def.json``) are returned as text for annotations.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol, cast

from builder.errors import BuilderError
from builder.oci.model import MEDIA_LAYER_GZIP, BundleInfo, Descriptor, bundle_info
from builder.tarsafe import check_member_name, open_tar_stream

APP = "app"
GZIP_LEVEL = 6  # gzip's and docker's default: close to -9 in size, much faster
WHITEOUT = ".wh."  # OCI layers read files named .wh.* as deletions
TOP_LEVEL_LIMIT = 1 << 20  # bytes of top-level files carried as annotations


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


class _HashingWriter:
    """Forward writes to ``out`` while hashing and counting them."""

    def __init__(self, out: _Sink) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    descriptor: Descriptor  # of the compressed blob
    diff_id: str  # sha256 of the uncompressed tar
    info: BundleInfo


def _normalized(member: tarfile.TarInfo, name: str, *, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if member.issym():
        info.type = tarfile.SYMTYPE
        info.linkname = member.linkname
        info.mode = 0o777
    elif member.isdir():
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.type = tarfile.REGTYPE
        info.size = member.size
        info.mode = 0o755 if member.mode & 0o111 else 0o644
    return info


def _layer_name(member: tarfile.TarInfo, *, where: str) -> str:
    """``app/x/y`` -> ``x/y``; refuses members an image layer cannot carry faithfully."""
    path = check_member_name(member.name, where=where)
    rel = PurePosixPath(*path.parts[1:]).as_posix()
    if not (member.isreg() or member.isdir() or member.issym()):
        raise BuilderError(f"{member.name}: only files, directories and symbolic links can go "
                           "into an image layer", where=where)
    if any(part.startswith(WHITEOUT) for part in path.parts):
        raise BuilderError(f"{member.name}: names starting with {WHITEOUT!r} mean deletions in "
                           "an OCI layer", where=where,
                           hint="rename the file in the recipe's packages")
    return rel


def write_layer(bundle: Path, out: IO[bytes]) -> Layer:
    """Write the layer of ``bundle`` (a ``.tar.zst``) to ``out``."""
    where = str(bundle)
    # read to its end: zstd's frame checksum is checked, not only the tar members
    with open_tar_stream(bundle, what="cannot read bundle",
                         hint="is this a builder bundle (.tar.zst)? If so, it is damaged: "
                         "build or fetch it again") as src:
        return _convert(src, out, where=where)


def _convert(src: tarfile.TarFile, out: IO[bytes], *, where: str) -> Layer:
    compressed = _HashingWriter(out)
    files: dict[str, str] = {}
    carried = 0
    info: BundleInfo | None = None
    # filename="" and mtime=0: the gzip header carries neither a name nor a time
    with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=compressed,
                       mtime=0) as gz:
        plain = _HashingWriter(gz)
        with tarfile.open(fileobj=cast(IO[bytes], plain), mode="w|",
                          format=tarfile.PAX_FORMAT) as dst:
            for member in src:
                top = check_member_name(member.name, where=where).parts[0]
                if top != APP:
                    if info is not None or not member.isreg() or "/" in member.name:
                        raise BuilderError(f"unexpected member {member.name!r}: the bundle "
                                           "has top-level files first, then app/",
                                           where=where, hint="is this a builder bundle?")
                    carried += member.size
                    if carried > TOP_LEVEL_LIMIT:
                        raise BuilderError("the top-level files are too large for annotations",
                                           where=where)
                    files[member.name] = _read_text(src, member, where=where)
                    continue
                if info is None:
                    if "manifest.json" not in files:
                        raise BuilderError("manifest.json does not come first", where=where,
                                           hint="is this a builder bundle?")
                    info = bundle_info(files["manifest.json"], files,
                                       where=f"{where}: manifest.json")
                if member.name.rstrip("/") == APP:
                    continue  # the image root itself
                name = _layer_name(member, where=where)
                header = _normalized(member, name, mtime=info.source_date_epoch)
                dst.addfile(header, src.extractfile(member) if member.isreg() else None)
    if info is None:
        raise BuilderError("the bundle has no app/ tree" if files else "the bundle is empty",
                           where=where, hint="is this a builder bundle?")
    return Layer(
        descriptor=Descriptor(media_type=MEDIA_LAYER_GZIP, digest=compressed.digest,
                              size=compressed.size),
        diff_id=plain.digest,
        info=info,
    )


def _read_text(src: tarfile.TarFile, member: tarfile.TarInfo, *, where: str) -> str:
    fh = src.extractfile(member)
    data = fh.read() if fh is not None else b""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BuilderError(f"{member.name} is not UTF-8 text", where=where) from exc
