"""Running the target's programs when building for another architecture (aarch64 on x86_64).

A build runs the bundle's own interpreter: sdist builds, ``[build]`` steps and ``[checks]``.
For a foreign target that works through qemu-user registered with binfmt_misc (Debian:
``apt-get install qemu-user-static binfmt-support``); qemu then needs the target's dynamic
loader and C library, which it finds under ``QEMU_LD_PREFIX``: a root filesystem of the
target architecture (e.g. ``debootstrap --arch=arm64 --variant=minbase``). builder keeps that
variable in the sandboxed environment of those commands and checks both up front, so a foreign
build fails at once with what to do instead of at its first check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from builder.errors import BuilderError

PREFIX_ENV = "QEMU_LD_PREFIX"
# how much longer the recipe's check bounds are for an emulated target (qemu-user runs Python
# 5-10x slower; importing every module of jupyter-6 takes minutes)
EMULATION_SLOWDOWN = 10
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# the dynamic loader of each target architecture, as inside a root filesystem
LOADERS = {"aarch64": "lib/ld-linux-aarch64.so.1", "x86_64": "lib64/ld-linux-x86-64.so.2"}


def emulation_problem(target_arch: str, host_arch: str, *, env: Mapping[str, str],
                      binfmt: Path = BINFMT) -> BuilderError | None:
    """Why the ``target_arch`` interpreter cannot run here, or None (also for native builds)."""
    if target_arch == host_arch:
        return None
    entry = binfmt / f"qemu-{target_arch}"
    lines = entry.read_text(errors="replace").splitlines() if entry.is_file() else []
    if not lines or lines[0] != "enabled":
        return BuilderError(
            f"building for {target_arch} on {host_arch} runs the bundle's {target_arch} "
            f"interpreter, but qemu-{target_arch} is not registered with binfmt_misc",
            where=str(entry),
            hint="apt-get install qemu-user-static binfmt-support (as root: mount -t "
            f"binfmt_misc binfmt_misc {binfmt} if it is not mounted, then update-binfmts "
            f"--enable qemu-{target_arch}), or build on a {target_arch} machine",
        )
    root = env.get(PREFIX_ENV, "")
    loader = LOADERS.get(target_arch)
    if not root or (loader is not None and not (Path(root) / loader).exists()):
        what = (f"{PREFIX_ENV} is not set" if not root
                else f"{PREFIX_ENV}={root} has no /{loader}")
        return BuilderError(
            f"building for {target_arch} on {host_arch} runs the bundle's {target_arch} "
            f"interpreter under qemu-user, which needs the {target_arch} C library: {what}",
            hint=f"set {PREFIX_ENV} to a {target_arch} root filesystem (e.g. made with "
            "debootstrap --arch=arm64 --variant=minbase), or build on a "
            f"{target_arch} machine",
        )
    return None


def check_can_run(target_arch: str, host_arch: str) -> None:
    problem = emulation_problem(target_arch, host_arch, env=os.environ)
    if problem is not None:
        raise problem
