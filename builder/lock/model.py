"""The lock: everything a build needs, pinned by hash. Pure data; see ``codec`` for files."""

from __future__ import annotations

from dataclasses import dataclass

LOCK_FORMAT_VERSION = 2  # 2: lock.json carries its integrity digest


@dataclass(frozen=True, slots=True, kw_only=True)
class InterpreterPin:
    """One python-build-standalone release asset."""

    release: str  # PBS release tag, e.g. "20240107"
    python_version: str  # full version, e.g. "3.11.7"
    triple: str  # e.g. "x86_64-unknown-linux-gnu"
    flavor: str  # e.g. "install_only"
    filename: str  # e.g. "cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz"
    url: str  # canonical release URL of the asset
    sha256: str
    size: int | None  # bytes; None when the publishing metadata did not state it

    @property
    def minor(self) -> str:
        return ".".join(self.python_version.split(".")[:2])


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedPackage:
    name: str  # canonical (PEP 503) name
    version: str
    filename: str  # the wheel (or sdist) chosen for this target
    sha256: str
    via: tuple[str, ...]  # canonical names of the dependants, or "-r recipe" for top-level
    url: str | None = None  # recorded for source distributions (fetched directly, not by pip)

    @property
    def is_sdist(self) -> bool:
        return is_sdist_filename(self.filename)


SDIST_SUFFIXES = (".tar.gz", ".zip")


def is_sdist_filename(filename: str) -> bool:
    return not filename.endswith(".whl") and filename.endswith(SDIST_SUFFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class SdistLock:
    """How one source distribution becomes a wheel at build time: its PEP 517 backend and the
    build dependencies that backend needs, resolved and hashed for each architecture a build
    may run on (the build runs on the build machine, like the node toolchain)."""

    name: str  # canonical
    version: str
    filename: str
    url: str
    sha256: str
    backend: str  # "setuptools.build_meta:__legacy__"
    backend_path: tuple[str, ...]  # in-tree backend directories (PEP 517 backend-path)
    requires: tuple[str, ...]  # static build-system.requires + what the backend asked for
    build_deps: tuple[tuple[str, tuple[LockedPackage, ...]], ...]  # (build arch, wheels), sorted

    def deps_for(self, arch: str) -> tuple[LockedPackage, ...] | None:
        return dict(self.build_deps).get(arch)


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelhouseLock:
    """The recipe's ``kernels.wheelhouse`` resolved for one Python minor of the image (the
    bundle ships these wheels; the launcher installs them for that Python, offline)."""

    python: str  # minor version, e.g. "3.12"
    python_version: str  # the version resolved for, e.g. "3.12.0" (the lowest patch release)
    packages: tuple[LockedPackage, ...]  # sorted by name


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetLock:
    target: str  # triple
    platform_tags: tuple[str, ...]  # pip --platform values, newest first
    interpreter: InterpreterPin
    packages: tuple[LockedPackage, ...]  # sorted by name
    wheelhouse: tuple[WheelhouseLock, ...] = ()  # sorted by Python version


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAppLock:
    """A recipe's ``[node]`` app: npm's own lockfiles pin its tree (``npm_lock`` is their
    digest, so a hand edit is caught), and the build-only toolchain wheel is pinned for each
    architecture a build may run on (it runs on the build machine, not the target)."""

    requirement: str  # "code-server@4.139.1"
    npm_lock: str  # "sha256:..." over lockfiles/<name>/package*.json and nested/
    toolchain: tuple[tuple[str, LockedPackage], ...]  # (build machine arch, wheel), sorted
    # (build machine arch, the Debian packages unpacked for their headers), for the arches the
    # lock was made on (apt answers for its own machine)
    build_headers: tuple[tuple[str, tuple[DebPin, ...]], ...] = ()

    def toolchain_for(self, arch: str) -> LockedPackage | None:
        return dict(self.toolchain).get(arch)

    def headers_for(self, arch: str) -> tuple[DebPin, ...] | None:
        return dict(self.build_headers).get(arch)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    recipe_name: str
    recipe_digest: str
    python: str  # minor version, e.g. "3.11"
    glibc_floor: str  # e.g. "2.17"
    targets: tuple[TargetLock, ...]  # sorted by target
    node: NodeAppLock | None = None
    sdists: tuple[SdistLock, ...] = ()  # sorted by filename; shared by every target

    def sdist(self, filename: str) -> SdistLock | None:
        return next((s for s in self.sdists if s.filename == filename), None)

    def for_target(self, target: str) -> TargetLock | None:
        return next((t for t in self.targets if t.target == target), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DebPin:
    """One ``.deb`` as the lock pins it."""

    package: str
    version: str
    filename: str  # "libkrb5-dev_1.20.1-2+deb12u5_amd64.deb"
    url: str
    size: int
    sha256: str
