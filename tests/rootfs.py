"""Debian minbase root filesystems for isolation tests, made once and cached.

`ensure_rootfs("bookworm")` returns `.cache/rootfs/bookworm-minbase-<arch>/`, creating it with
`debootstrap --variant=minbase` when missing (a few minutes, Debian's mirror is reachable here and
in CI). `ensure_rootfs("bookworm", include=("python3-ipykernel",))` adds packages (and what they
depend on) and is cached under its own name, `bookworm-minbase-<arch>+python3-ipykernel/`.
Creation goes to a sibling directory and is renamed into place under a file lock, so an
interrupted run never leaves a half root behind. Needs root (the tests and CI run as root).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
# stand-ins for data-science images: Debian's python3 with numpy and pip (PEP 668 applies),
# and the same with Debian's ipykernel (debootstrap cannot resolve virtual packages: the
# providers python3-zmq needs are named)
IMAGE_WITH_NUMPY = ("python3-numpy", "python3-pip")
IMAGE_WITH_IPYKERNEL = (*IMAGE_WITH_NUMPY, "python3-ipykernel", "python3-cffi-backend",
                        "libboost-regex1.74.0")
CACHE = ROOT / ".cache" / "rootfs"
MIRROR = os.environ.get("BUILDER_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def can_isolate() -> str | None:
    """Why isolation tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "isolation tests need root (unshare -m, mount, chroot)"
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (apt-get install debootstrap)"
    return None


def can_emulate(arch: str) -> str | None:
    """Why roots of Debian architecture ``arch`` cannot be made and run here, or None.

    The host's own architecture always can; another one needs qemu-user-static registered
    with binfmt_misc (``./dev test`` installs and registers it when run as root)."""
    if arch == ARCH:
        return None
    qemu = {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)
    entry = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{qemu}"
    if not entry.is_file():
        return (f"running {arch} programs needs qemu-user-static registered with binfmt_misc "
                f"(no {entry}; ./dev test registers it as root)")
    if "enabled" not in entry.read_text(errors="replace").splitlines()[:1]:
        return f"binfmt_misc entry {entry} is disabled (update-binfmts --enable qemu-{qemu})"
    return None


def ensure_rootfs(suite: str, include: tuple[str, ...] = (), *, arch: str = ARCH) -> Path:
    """The cached minbase root of ``suite`` (e.g. bookworm, bullseye), created when missing.

    ``include`` names Debian packages to add (debootstrap ``--include``); each set of packages
    is a separate cached root. ``arch`` is a Debian architecture (default: the host's); a
    foreign one is bootstrapped with ``--foreign``. Its second stage (configuring every package
    in a chroot under qemu-user: minutes) runs only when ``include`` asks for packages; a plain
    foreign minbase root is the first stage alone, its packages unpacked, not configured
    (no /etc/passwd, an empty dpkg status), with the mount points a container has. That is
    what running a bundle needs: its dynamic loader, C and C++ runtime, /bin/sh, env."""
    reason = can_isolate() or can_emulate(arch)
    if reason:
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    packages = sorted(set(include))
    foreign = ["--foreign"] if arch != ARCH else []
    unpacked_only = bool(foreign) and not packages
    key = (f"{suite}-minbase-{arch}" + "".join(f"+{p}" for p in packages)
           + ("-unpacked" if unpacked_only else ""))
    final = CACHE / key
    lock_name = f".{suite}.lock" if not packages and arch == ARCH else f".{key}.lock"
    with FileLock(str(CACHE / lock_name)):
        if (final / ".builder-rootfs-complete").is_file():
            return final
        work = CACHE / f".{key}.work"
        if work.exists():
            shutil.rmtree(work)
        extra = [f"--include={','.join(packages)}"] if packages else []
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--arch={arch}", *foreign, *extra, suite,
             str(work), MIRROR],
            capture_output=True, text=True, check=False, timeout=1800,
        )
        if proc.returncode == 0 and unpacked_only:
            shutil.rmtree(work / "debootstrap")  # the second stage's scripts
            for deb in (work / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            for mount_point in ("dev", "opt", "proc", "sys", "tmp"):
                (work / mount_point).mkdir(exist_ok=True)
            (work / "tmp").chmod(0o1777)
        elif proc.returncode == 0 and foreign:
            proc = subprocess.run(
                ["chroot", str(work), "/debootstrap/debootstrap", "--second-stage"],
                capture_output=True, text=True, check=False, timeout=3600,
            )
        if proc.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise RuntimeError(f"debootstrap {key} failed:\n{proc.stdout[-2000:]}"
                               f"\n{proc.stderr[-2000:]}")
        (work / ".builder-rootfs-complete").write_text(suite + "\n")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    return final


def glibc_version(root: Path) -> str:
    """The glibc version a root ships, read from its libc's file name or its dpkg status."""
    status = root / "var/lib/dpkg/status"
    package = None
    for line in status.read_text(errors="replace").splitlines():
        if line.startswith("Package: "):
            package = line.split(": ", 1)[1]
        elif line.startswith("Version: ") and package == "libc6":
            return ".".join(line.split(": ", 1)[1].split("-")[0].split(".")[:2])
    raise RuntimeError(f"no libc6 in {status}")
