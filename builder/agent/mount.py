"""Mounting a bundle's filesystem image read-only: the kernel (loop) where the agent may,
``squashfuse`` (FUSE) otherwise.

Both mounts are ``ro,nosuid,nodev``: a set-id bit or a device node in an image does nothing.
A kernel mount needs root (``CAP_SYS_ADMIN``), the file system in the kernel and a loop device;
the loop device is released by itself once the last mount of it goes (``autoclear``).
``squashfuse`` needs ``/dev/fuse``; it mounts with ``allow_other`` so containers' users read
it, which FUSE grants to root, and to other users only with ``user_allow_other`` in
``/etc/fuse.conf`` (without it the mount is the agent user's alone, and the install says so).
Mounts outlive the agent (the kernel's, and the squashfuse daemon); unmounting is lazy
(``MNT_DETACH``): the path goes at once, a process still reading keeps its view until it ends.
No imports from the store: it calls these.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.agent.errors import StoreError
from builder.errors import BuilderError

MOUNT_OPTIONS = "ro,nosuid,nodev"
_TIMEOUT = 120


class MountMethod(enum.StrEnum):
    KERNEL = "kernel"
    FUSE = "fuse"


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """What this node offers for mounting (a port, so tests can describe other nodes)."""

    root: bool
    filesystems: frozenset[str]  # /proc/filesystems (squashfs, fuse, ...)
    loop_device: bool  # /dev/loop-control
    fuse_device: bool  # /dev/fuse
    squashfuse: str | None  # its path
    allow_other: bool = False  # FUSE mounts other users can read (root, or user_allow_other)

    def methods(self) -> tuple[MountMethod, ...]:
        """The ways this node can mount a squashfs image, the preferred first."""
        out = []
        if self.root and "squashfs" in self.filesystems and self.loop_device:
            out.append(MountMethod.KERNEL)
        if self.fuse_device and self.squashfuse is not None:
            out.append(MountMethod.FUSE)
        return tuple(out)


def fuse_allows_other(fuse_conf: Path = Path("/etc/fuse.conf")) -> bool:
    """Whether ``/etc/fuse.conf`` lets users other than root mount with ``allow_other``."""
    try:
        text = fuse_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.split("#", 1)[0].strip() == "user_allow_other"
               for line in text.splitlines())


def this_node(*, which: Callable[[str], str | None] = shutil.which) -> Node:
    try:
        text = Path("/proc/filesystems").read_text(encoding="ascii", errors="replace")
    except OSError:
        text = ""
    root = os.geteuid() == 0
    return Node(root=root, allow_other=root or fuse_allows_other(),
                filesystems=frozenset(line.split()[-1] for line in text.splitlines()
                                      if line.split()),
                loop_device=Path("/dev/loop-control").exists(),
                fuse_device=Path("/dev/fuse").exists(),
                squashfuse=which("squashfuse"))


def choose_method(node: Node, wanted: MountMethod | None) -> MountMethod | None:
    """``wanted`` if the node can (else an error), or the node's best; None: cannot mount."""
    methods = node.methods()
    if wanted is None:
        return methods[0] if methods else None
    if wanted not in methods:
        need = ("root, squashfs in /proc/filesystems and /dev/loop-control"
                if wanted is MountMethod.KERNEL else "/dev/fuse and squashfuse on PATH")
        raise BuilderError(f"this node cannot mount with {wanted} (it needs {need})",
                           where="--mount",
                           hint="leave --mount out to use what the node offers, or --extract")
    return wanted


def _run(command: list[str], *, what: str, where: Path) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise StoreError(f"cannot {what}: {exc}", where=str(where)) from exc
    if done.returncode != 0:
        raise StoreError(f"cannot {what}: {(done.stderr or done.stdout).strip()[-400:]}",
                         where=str(where))


def mount_image(image: Path, at: Path, *, method: MountMethod, node: Node) -> None:
    """Mount the (already hash-checked) squashfs ``image`` read-only at ``at``."""
    if method is MountMethod.KERNEL:
        command = ["mount", "-t", "squashfs", "-o", f"{MOUNT_OPTIONS},loop", str(image),
                   str(at)]
    else:
        options = MOUNT_OPTIONS + (",allow_other" if node.allow_other else "")
        command = [node.squashfuse or "squashfuse", "-o", options, str(image), str(at)]
    _run(command, what=f"mount the image ({method})", where=image)


def mount_source(path: Path, *, mountinfo: Path = Path("/proc/self/mountinfo")) -> str | None:
    """The file system type of the mount whose mount point is ``path`` (``squashfs``,
    ``fuse.squashfuse``), None when ``path`` is no mount point."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    wanted = os.path.realpath(path)
    found = None
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040
        if point == wanted:
            found = line.split(" - ", 1)[1].split()[0]  # the last mount on top wins
    return found


def is_mounted(path: Path) -> bool:
    return mount_source(path) is not None


def unmount(path: Path, *, node: Node | None = None) -> None:
    """Lazily unmount ``path`` (every mount stacked on it); nothing if it is no mount point."""
    for _ in range(8):  # a mount point with several mounts stacked (should not happen)
        kind = mount_source(path)
        if kind is None:
            return
        node = node or this_node()
        if node.root or not kind.startswith("fuse"):
            _run(["umount", "-l", str(path)], what="unmount the image", where=path)
        else:
            _run(["fusermount", "-u", "-z", str(path)], what="unmount the image", where=path)
    raise StoreError("the image stays mounted after eight unmounts", where=str(path))
