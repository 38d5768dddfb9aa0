"""An installed CPython prefix: recognising one, and which of its files an import keeps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.elf import is_elf, read_elf
from builder.errors import BuilderError

PLACEHOLDER = "/install"  # the prefix python-build-standalone builds with

_BIN_PYTHON = re.compile(r"^python(3\.\d+)$")
_BIN_KEEP = re.compile(r"^(?:python|pydoc|2to3|idle)")
_PIP_DIST = re.compile(r"^pip-[^/]+\.dist-info$")
_PY_VERSION = re.compile(r'^#define\s+PY_VERSION\s+"([^"]+)"', re.MULTILINE)
_SYSCONFIGDATA = re.compile(r"^_sysconfigdata_[a-z]*_linux_(.+)\.py$")
_MULTIARCH_TRIPLE = re.compile(r"^([a-z0-9_]+)-linux-(gnu\w*|musl\w*)$")
_ARCH_ALIASES = {"i386": "i686", "powerpc64le": "ppc64le", "arm": "armv7"}

LinkMode = Literal["shared", "static"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixInfo:
    root: Path  # absolute, as given
    python_version: str  # "3.11.7"
    minor: str  # "3.11"
    triple: str  # "x86_64-unknown-linux-gnu"
    link_mode: LinkMode
    has_pip: bool

    @property
    def exe_name(self) -> str:
        return f"python{self.minor}"


def _not_cpython(prefix: Path, what: str) -> BuilderError:
    return BuilderError(
        f"not a CPython installation: {what}",
        where=str(prefix),
        hint="give the prefix of an installed CPython (the directory holding bin/python3.X, "
        "lib/python3.X/ and include/python3.X/), e.g. the output of 'pyenv prefix 3.11.7'",
    )


def triple_from_multiarch(multiarch: str) -> str | None:
    """``x86_64-linux-gnu`` -> ``x86_64-unknown-linux-gnu``."""
    match = _MULTIARCH_TRIPLE.match(multiarch)
    if match is None:
        return None
    arch = _ARCH_ALIASES.get(match.group(1), match.group(1))
    return f"{arch}-unknown-linux-{match.group(2)}"


def triple_from_sysconfigdata(name: str) -> str | None:
    match = _SYSCONFIGDATA.match(name)
    return triple_from_multiarch(match.group(1)) if match else None


def version_from_patchlevel(text: str) -> str | None:
    match = _PY_VERSION.search(text)
    return match.group(1) if match else None


def probe_prefix(prefix: Path) -> PrefixInfo:
    """Recognise an installed CPython; a clear error when ``prefix`` is not one."""
    prefix = prefix.absolute()
    if str(prefix) == "/":
        raise _not_cpython(prefix, "refusing to import the root directory")
    if not prefix.is_dir():
        raise _not_cpython(prefix, "no such directory")
    bin_dir = prefix / "bin"
    minors = sorted(
        (m.group(1) for p in (bin_dir.iterdir() if bin_dir.is_dir() else ())
         if (m := _BIN_PYTHON.match(p.name)) and p.is_file()),
        key=lambda v: tuple(int(x) for x in v.split(".")),
    )
    if not minors:
        raise _not_cpython(prefix, "no bin/python3.X executable")
    minor = minors[-1]
    exe = bin_dir / f"python{minor}"
    if not is_elf(exe.resolve()):
        raise _not_cpython(prefix, f"bin/python{minor} is not an ELF executable")
    stdlib = prefix / "lib" / f"python{minor}"
    if not (stdlib / "os.py").is_file():
        raise _not_cpython(prefix, f"no standard library at lib/python{minor}/")
    patchlevel = prefix / "include" / f"python{minor}" / "patchlevel.h"
    try:
        version = version_from_patchlevel(patchlevel.read_text(encoding="utf-8"))
    except OSError:
        version = None
    if version is None:
        raise _not_cpython(prefix, f"no PY_VERSION in include/python{minor}/patchlevel.h")
    triple = next(
        (t for p in sorted(stdlib.glob("_sysconfigdata_*.py"))
         if (t := triple_from_sysconfigdata(p.name))),
        None,
    )
    if triple is None:
        triple = f"{read_elf(exe.resolve()).arch}-unknown-linux-gnu"
    shared = any((prefix / "lib").glob(f"libpython{minor}*.so*"))
    return PrefixInfo(
        root=prefix,
        python_version=version,
        minor=minor,
        triple=triple,
        link_mode="shared" if shared else "static",
        has_pip=(stdlib / "site-packages" / "pip").is_dir(),
    )


def _keep_bin(rest: tuple[str, ...], *, is_dir: bool, has_pip: bool) -> bool:
    if not rest:
        return is_dir
    if len(rest) > 1 or is_dir:
        return False
    return bool(_BIN_KEEP.match(rest[0])) or (has_pip and rest[0].startswith("pip"))


def _keep_stdlib(inner: tuple[str, ...], *, has_pip: bool) -> bool:
    """Below lib/python3.X/: all but the test package, static libraries and third-party
    packages (pip excepted)."""
    if not inner:
        return True
    if inner[0] == "test":
        return False
    if inner[0].startswith("config-") and len(inner) == 2:
        return not inner[1].endswith(".a")
    if inner[0] != "site-packages" or len(inner) == 1:
        return True
    name = inner[1]
    if len(inner) == 2 and name == "README.txt":
        return True
    return has_pip and (name == "pip" or bool(_PIP_DIST.match(name)))


def _keep_lib(rest: tuple[str, ...], *, is_dir: bool, minor: str, has_pip: bool) -> bool:
    if not rest:
        return True
    if rest[0] == "pkgconfig":
        return len(rest) == 1 or rest[1].startswith("python")
    if rest[0].startswith("libpython"):
        return not is_dir and not rest[0].endswith(".a")
    return rest[0] == f"python{minor}" and _keep_stdlib(rest[1:], has_pip=has_pip)


def keep(parts: tuple[str, ...], *, is_dir: bool, minor: str, has_pip: bool) -> bool:
    """Whether the import keeps the prefix entry at ``parts`` (a directory: whether anything
    below it may be kept, so the walk can prune it)."""
    if not parts or "__pycache__" in parts:
        return False
    top, rest = parts[0], parts[1:]
    if top == "bin":
        return _keep_bin(rest, is_dir=is_dir, has_pip=has_pip)
    if top == "include":
        return not rest or rest[0].startswith(f"python{minor}")
    if top == "lib":
        return _keep_lib(rest, is_dir=is_dir, minor=minor, has_pip=has_pip)
    return False
