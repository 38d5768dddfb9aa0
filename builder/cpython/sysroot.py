"""Importing from a root filesystem (``runtime import --sysroot ROOT``): paths seen from inside it.

An interpreter of another architecture (an arm64 Debian root on an x86_64 host) or one inside a
container's root is imported with the root's libraries, never the host's: its symlinks are
resolved inside the root (an absolute target means ``ROOT/target``, ``..`` stops at ``ROOT``),
its libraries are looked up in the root's default, multiarch and ``/etc/ld.so.conf`` directories,
and the paths recorded in ``PYTHON.json`` are the ones inside the root, so the archive has the
same bytes wherever the root sits on the host.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from builder.cpython.hostlibs import default_dirs
from builder.elf import ElfInfo, is_elf, read_elf
from builder.errors import BuilderError

_MAX_LINKS = 40  # the kernel's limit on symlinks followed in one lookup


def _root_error(root: Path, what: str) -> BuilderError:
    return BuilderError(what, where=str(root),
                        hint="give --sysroot the directory holding the root filesystem "
                        "(with usr/, lib/ or their links) the prefix belongs to")


def inner_path(root: Path, path: Path) -> PurePosixPath:
    """``ROOT/usr/lib/x`` -> ``/usr/lib/x`` (``path`` must lie below ``root``)."""
    return PurePosixPath("/") / path.relative_to(root).as_posix()


def resolve_in_root(root: Path, inner: PurePosixPath | str) -> Path:
    """The host path of ``inner`` (a path as seen inside ``root``) with every symlink resolved
    the way a process chrooted into ``root`` would see it. The result lies below ``root``;
    it need not exist."""
    pending = [p for p in PurePosixPath(inner).parts if p != "/"]
    done: list[str] = []
    followed = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = root.joinpath(*done, part)
        if not here.is_symlink():
            done.append(part)
            continue
        followed += 1
        if followed > _MAX_LINKS:
            raise _root_error(root, f"too many levels of symbolic links below /{'/'.join(done)}")
        target = str(here.readlink())
        if target.startswith("/"):
            done = []
        pending = [p for p in PurePosixPath(target).parts if p != "/"] + pending
    return root.joinpath(*done)


def resolve_host_path(root: Path, path: Path) -> Path:
    """``path`` (a host path below ``root``) resolved inside ``root``."""
    return resolve_in_root(root, inner_path(root, path))


def ld_so_conf_dirs(root: Path) -> tuple[PurePosixPath, ...]:
    """The library directories ``ROOT/etc/ld.so.conf`` names (``include`` globs followed once
    per file), as paths inside the root, in order."""
    seen: set[str] = set()
    dirs: list[PurePosixPath] = []

    def read(inner: str) -> None:
        if inner in seen:
            return
        seen.add(inner)
        try:
            text = resolve_in_root(root, inner).read_text(errors="replace")
        except OSError:
            return
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("include"):
                pattern = line.split(None, 1)[1] if len(line.split(None, 1)) == 2 else ""
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(inner), pattern)
                for match in sorted(root.glob(pattern.lstrip("/"))):
                    read(str(inner_path(root, match)))
            elif line.startswith("/"):
                dirs.append(PurePosixPath(line))

    read("/etc/ld.so.conf")
    return tuple(dirs)


@dataclass(slots=True)
class SysrootLibraryFinder:
    """``LibraryFinder`` for a root filesystem: RPATH/RUNPATH (``$ORIGIN`` of a file inside the
    root is that file's place in the root; absolute entries are the root's), the root's
    ld.so.conf directories, then its default and multiarch directories. Symlinks resolve inside
    the root; candidates of another architecture than the requester are skipped."""

    root: Path
    conf_dirs: tuple[PurePosixPath, ...]
    _arch_of: dict[Path, str] = field(default_factory=dict)

    @classmethod
    def for_root(cls, root: Path) -> SysrootLibraryFinder:
        root = root.absolute()
        if not root.is_dir():
            raise _root_error(root, "the sysroot is not a directory")
        return cls(root, ld_so_conf_dirs(root))

    def _arch(self, path: Path) -> str | None:
        if path not in self._arch_of:
            self._arch_of[path] = read_elf(path).arch if is_elf(path) else ""
        return self._arch_of[path] or None

    def _expand(self, entry: str, origin: Path) -> Path | None:
        if "$ORIGIN" in entry or "${ORIGIN}" in entry:
            text = entry.replace("${ORIGIN}", "$ORIGIN")
            if origin.is_relative_to(self.root):
                inner = text.replace("$ORIGIN", str(inner_path(self.root, origin)))
                return None if "$" in inner else resolve_in_root(self.root, inner)
            host = text.replace("$ORIGIN", str(origin))
            return None if "$" in host or not host.startswith("/") else Path(host)
        if "$" in entry or not entry.startswith("/"):
            return None
        return resolve_in_root(self.root, entry)

    def candidates(self, name: str, *, requester: ElfInfo) -> list[Path]:
        origin = requester.path.parent
        entries = [] if requester.runpath else list(requester.rpath)
        entries += list(requester.runpath)
        dirs = [d for e in entries if (d := self._expand(e, origin)) is not None]
        inner_dirs = [*self.conf_dirs, *(PurePosixPath(d) for d in default_dirs(requester.arch))]
        dirs += [resolve_in_root(self.root, d) for d in inner_dirs]
        return [d / name for d in dirs]

    def find(self, name: str, *, requester: ElfInfo) -> Path | None:
        for candidate in self.candidates(name, requester=requester):
            real = (resolve_host_path(self.root, candidate)
                    if candidate.is_relative_to(self.root) else candidate.resolve())
            if real.is_file() and self._arch(real) == requester.arch:
                return real
        return None

    def recorded(self, path: Path) -> str:
        """How ``PYTHON.json`` names a vendored library: its path inside the root."""
        return str(inner_path(self.root, path)) if path.is_relative_to(self.root) else str(path)
