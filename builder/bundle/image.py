"""A mountable, reproducible filesystem image of a bundle (``builder build --image squashfs``).

The image is made from the bundle's own archive: the ``.tar.zst`` just written is unpacked into
the staging directory and ``mksquashfs`` packs that tree, so the image holds exactly the
archive's files, modes and symlinks (its root is the bundle root: ``manifest.json``,
``service-def.json``, ``app/``). Its bytes are a pure function of the archive and of the mkfs
tool's version (recorded in the sidecar): every time is the archive's mtime
(``SOURCE_DATE_EPOCH``), every owner root, no xattrs, no hard links, and mksquashfs's own
reproducible mode (independent of the number of processors). ``SOURCE_DATE_EPOCH`` is removed
from the tool's environment: mksquashfs refuses it beside ``-all-time``.

squashfs, not EROFS: one image serves both mount paths the agent has, the kernel (loop mount)
and ``squashfuse`` (FUSE, no privileges); lz4hc keeps reads cheap (bench/bench_image.py).
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import BuilderError
from builder.fsutil import sha256_file
from builder.tarsafe import open_tar_stream


class ImageKind(enum.StrEnum):
    SQUASHFS = "squashfs"


SUFFIXES = {ImageKind.SQUASHFS: ".squashfs"}
TOOLS = {ImageKind.SQUASHFS: ("mksquashfs", "squashfs-tools")}  # (program, Debian package)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    """The sidecar's (and catalog's) ``image`` object."""

    kind: ImageKind
    filename: str
    sha256: str
    size: int
    tool: str  # "mksquashfs 4.5.1": the image's bytes depend on it

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "filename": self.filename, "sha256": self.sha256,
                "size": self.size, "tool": self.tool}


@dataclass(frozen=True, slots=True)
class MkfsTool:
    path: str
    version: str  # "mksquashfs 4.5.1"


def find_tool(kind: ImageKind, *, which: Callable[[str], str | None] = shutil.which
              ) -> MkfsTool:
    """The mkfs program for ``kind`` and its version; a clear error when it is missing."""
    program, package = TOOLS[kind]
    path = which(program)
    if path is None:
        raise BuilderError(f"--image {kind} needs {program}, which is not installed",
                           where="PATH",
                           hint=f"install it (Debian/Ubuntu: apt-get install {package}) or "
                           "build without --image")
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, check=False,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuilderError(f"cannot run {program}: {exc}", where=path) from exc
    return MkfsTool(path=path, version=parse_tool_version(program, out, where=path))


def parse_tool_version(program: str, output: str, *, where: str) -> str:
    """``mksquashfs version 4.5.1 (2022/03/17)`` -> ``mksquashfs 4.5.1``."""
    first = output.strip().splitlines()[0].split() if output.strip() else []
    if len(first) >= 3 and first[0] == program and first[1] == "version":
        return f"{program} {first[2]}"
    raise BuilderError(f"cannot tell the version of {program} from {output[:80]!r}",
                       where=where, hint="is this squashfs-tools' mksquashfs?")


def mkfs_command(kind: ImageKind, tool: MkfsTool, root: Path, dest: Path, *,
                 mtime: int) -> list[str]:
    """The reproducible mkfs command line (pure)."""
    if kind is not ImageKind.SQUASHFS:  # pragma: no cover (one kind so far)
        raise BuilderError(f"unknown image kind {kind}", where="--image")
    return [tool.path, str(root), str(dest), "-noappend", "-quiet", "-no-progress",
            "-comp", "lz4", "-Xhc", "-all-root", "-no-xattrs", "-no-hardlinks",
            "-mkfs-time", str(mtime), "-all-time", str(mtime)]


def mkfs_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The tool's environment: ``SOURCE_DATE_EPOCH`` out (the command line sets every time)."""
    return {k: v for k, v in environ.items() if k != "SOURCE_DATE_EPOCH"}


def unpack_archive(archive: Path, dest: Path) -> None:
    """The archive's tree at ``dest`` (our own archive, just written or vouched for by its
    sidecar; the ``tar`` filter still drops set-id bits and refuses absolute names)."""
    # read to its end (open_tar_stream): zstd's frame checksum is checked too
    with open_tar_stream(archive, what="cannot unpack the archive for its image") as tar:
        tar.extractall(dest, filter="tar")


def write_image(archive: Path, dest: Path, *, kind: ImageKind, mtime: int, work: Path,
                tool: MkfsTool | None = None) -> ImageInfo:
    """The image of ``archive`` at ``dest`` (``work``: an empty scratch directory, left for
    the caller to remove)."""
    tool = tool or find_tool(kind)
    root = work / "image-root"
    root.mkdir()
    root.chmod(0o755)  # the image's root directory: not the umask's choice
    unpack_archive(archive, root)
    command = mkfs_command(kind, tool, root, dest, mtime=mtime)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env=mkfs_environment(os.environ), timeout=3600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuilderError(f"cannot run {tool.version}: {exc}", where=tool.path) from exc
    if done.returncode != 0:
        raise BuilderError(f"{tool.version} failed (exit {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-400:]}", where=str(dest))
    return ImageInfo(kind=kind, filename=dest.name, sha256=sha256_file(dest),
                     size=dest.stat().st_size, tool=tool.version)


def image_path(archive: Path, kind: ImageKind) -> Path:
    """``X.tar.zst`` -> ``X.squashfs`` (beside the archive and its sidecar)."""
    name = archive.name.removesuffix(".tar.zst")
    return archive.with_name(name + SUFFIXES[kind])
