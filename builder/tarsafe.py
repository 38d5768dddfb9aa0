"""Reading and safely extracting ``.tar.gz`` / ``.tar.zst`` / ``.tar`` archives (streaming).

Extraction refuses absolute member names, ``..`` components, links that leave the destination and
device files (tarfile's ``data`` filter plus explicit checks), keeps exec bits and symlinks, and
ignores owners. Foreign errors (tarfile, gzip, zstandard, the file system) are wrapped once.
"""

from __future__ import annotations

import contextlib
import gzip
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

import zstandard

from builder.errors import BuilderError

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20

TAR_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError, zlib.error, EOFError, zstandard.ZstdError, OSError,
)


class UnsafeMemberError(BuilderError):
    """An archive member that would escape the destination or is not a plain file/dir/link."""


def _compression(head: bytes) -> str:
    if head.startswith(_GZIP_MAGIC):
        return "gz"
    if head.startswith(_ZSTD_MAGIC):
        return "zst"
    return ""


@contextlib.contextmanager
def open_tar_stream(archive: Path, *, what: str = "cannot read archive",
                    hint: str = "the file is damaged or truncated; fetch or make it again"
                    ) -> Iterator[tarfile.TarFile]:
    """Open ``archive`` for one sequential pass, whatever its compression (by magic bytes).

    When the pass ends normally the decompressed stream is read to its end, so the gzip CRC and
    length (and zstd's frame checksum) are checked: tar stops at its end-of-archive blocks,
    before the compression trailer, and would otherwise accept a corrupted archive. An archive
    that cannot be read is ``BuilderError(f"{what}: {cause}", hint=hint)``."""
    try:
        with archive.open("rb") as raw:
            kind = _compression(raw.read(4))
            raw.seek(0)
            stream: BinaryIO
            if kind == "zst":
                stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            elif kind == "gz":
                stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
            else:
                stream = raw
            with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                yield tar
                _drain(stream)
    except BuilderError:
        raise
    except TAR_ERRORS as exc:
        raise BuilderError(f"{what}: {exc}", where=str(archive), hint=hint) from exc


def _drain(stream: BinaryIO) -> None:
    """Read to the end of the (decompressed) stream: its checksums are verified there."""
    while stream.read(CHUNK):
        pass


def check_member_name(name: str, *, where: str) -> PurePosixPath:
    """The member name as a relative path; refuses absolute names and ``..`` components."""
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        raise UnsafeMemberError(f"member with an absolute path: {name!r}", where=where,
                                hint="the archive is malformed or malicious; nothing was used")
    if ".." in path.parts:
        raise UnsafeMemberError(f"member leaving the destination: {name!r}", where=where,
                                hint="the archive is malformed or malicious; nothing was used")
    return path


def member_path(name: str, *, where: str) -> str:
    """:func:`check_member_name` as a string, with plain string operations (the agent's
    extraction calls it for every member): ``./a//b/`` is ``a/b``, ``.`` (or empty) is ``.``."""
    if name.startswith("/"):
        raise UnsafeMemberError(f"member with an absolute path: {name!r}", where=where,
                                hint="the archive is malformed or malicious; nothing was used")
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafeMemberError(f"member leaving the destination: {name!r}", where=where,
                                hint="the archive is malformed or malicious; nothing was used")
    return "/".join(parts) or "."


def safe_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile extraction filter: our name checks, then tarfile's ``data`` filter."""
    check_member_name(member.name, where=member.name)
    if member.issym() or member.islnk():
        check_link = PurePosixPath(member.linkname)
        if check_link.is_absolute():
            raise UnsafeMemberError(f"link to an absolute path: {member.name!r} -> "
                                    f"{member.linkname!r}", where=member.name)
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeMemberError(f"special file (device, fifo) in archive: {member.name!r}",
                                where=member.name)
    return tarfile.data_filter(member, dest)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract every member of ``archive`` below ``dest`` (which must exist)."""
    with open_tar_stream(archive) as tar:
        try:
            tar.extractall(dest, filter=safe_filter)  # noqa: S202 (filtered)
        except UnsafeMemberError as exc:
            raise UnsafeMemberError(exc.what, where=f"{archive}: {exc.where}",
                                    hint=exc.hint) from exc
        except tarfile.FilterError as exc:
            raise UnsafeMemberError(f"unsafe member refused: {exc}", where=str(archive),
                                    hint="the archive is malformed or malicious") from exc
        except TAR_ERRORS as exc:
            raise BuilderError(f"cannot extract archive: {exc}", where=str(archive)) from exc
