"""Reading and safely extracting ``.tar.gz`` / ``.tar.zst`` / ``.tar`` archives (streaming).

Extraction refuses absolute member names, ``..`` components, links that leave the destination and
device files (tarfile's ``data`` filter plus explicit checks), keeps exec bits and symlinks, and
ignores owners. Foreign errors (tarfile, gzip, zstandard, the file system) are wrapped once.
"""

from __future__ import annotations

import contextlib
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import zstandard

from builder.errors import BuilderError

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

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
def open_tar_stream(archive: Path) -> Iterator[tarfile.TarFile]:
    """Open ``archive`` for one sequential pass, whatever its compression (by magic bytes)."""
    try:
        with archive.open("rb") as raw:
            kind = _compression(raw.read(4))
            raw.seek(0)
            if kind == "zst":
                reader = zstandard.ZstdDecompressor().stream_reader(raw)
                with reader, tarfile.open(fileobj=reader, mode="r|") as tar:
                    yield tar
            else:
                with tarfile.open(fileobj=raw, mode="r|gz" if kind == "gz" else "r|") as tar:
                    yield tar
    except BuilderError:
        raise
    except TAR_ERRORS as exc:
        raise BuilderError(f"cannot read archive: {exc}", where=str(archive)) from exc


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
