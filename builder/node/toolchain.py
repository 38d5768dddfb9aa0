"""A C/C++ toolchain from the ``ziglang`` wheel that targets a glibc floor, for node-gyp.

``zig cc -target x86_64-linux-gnu.2.28`` links against glibc 2.28 symbol versions whatever the
build host has, and ``zig c++`` links its own libc++ statically, so native modules built this
way need at most the floor and no libstdc++. node-gyp (gyp's make generator), cmake and the odd
``buildcheck`` script all take the compiler from ``CC``/``CXX``/``LINK``/``AR``, so the
toolchain is a directory of small wrapper scripts plus those variables.

Two zig quirks the wrappers absorb:
- a gyp target with no sources on Linux (``windows.node`` of @vscode/deviceid) is linked with no
  input file; zig then hands the command to clang, which rejects the ``.2.28`` triple, so an
  input-less ``-shared`` link gets an empty C unit;
- zig's libc++ carries DWARF, so a link step gets ``-s`` (a 5 MB module becomes 0.4 MB); the
  dynamic symbol table Node needs is kept.
The wrappers hold the absolute path of zig: build-time only, never shipped.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.errors import BuilderError

# target triple arch -> (zig arch, node-gyp/npm arch name)
_ARCHES = {"x86_64": ("x86_64", "x64"), "aarch64": ("aarch64", "arm64")}
Driver = Literal["cc", "c++"]


def zig_target(triple: str, glibc_floor: str) -> str:
    """``x86_64-unknown-linux-gnu`` + ``2.28`` -> ``x86_64-linux-gnu.2.28``."""
    parts = triple.split("-")
    if len(parts) < 3 or parts[0] not in _ARCHES or parts[-2:] != ["linux", "gnu"]:
        raise BuilderError(f"no zig target for {triple!r}",
                           hint="native Node modules are built for x86_64/aarch64 *-linux-gnu")
    if not glibc_floor.replace(".", "").isdigit() or glibc_floor.count(".") != 1:
        raise BuilderError(f"bad glibc floor {glibc_floor!r}", hint="write it as 2.28")
    return f"{_ARCHES[parts[0]][0]}-linux-gnu.{glibc_floor}"


def gyp_arch(triple: str) -> str:
    """node-gyp's ``--arch`` (and npm's ``--cpu``) for a target triple."""
    arch = triple.split("-", 1)[0]
    if arch not in _ARCHES:
        raise BuilderError(f"no Node.js arch for {triple!r}")
    return _ARCHES[arch][1]


def driver_script(zig: Path, driver: Driver, target: str, *, strip: bool = True) -> str:
    """The ``cc``/``c++`` wrapper: zig's clang for ``target`` (see the module doc)."""
    link_flags = '\nif [ "$link" = 1 ]; then set -- "$@" -s; fi' if strip else ""
    return f"""#!/bin/sh
# Written by builder: zig {driver} for {target}. An input-less -shared link gets an empty C unit
# (zig passes such a command to clang, which rejects the glibc-versioned triple).
shared=0; input=0; link=1; skip=0
for arg in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$arg" in
    -o|-MF|-MT|-MQ|-x|-include|-isystem|-idirafter|-iquote|-I|-L|-target|-Xlinker) skip=1 ;;
    -c|-E|-S|-M|-MM|--version|-v|-dumpversion|-dumpmachine|-print-*) link=0 ;;
    -shared) shared=1 ;;
    -) input=1 ;;
    -*) ;;
    *) input=1 ;;
  esac
done
if [ "$shared" = 1 ] && [ "$input" = 0 ]; then set -- "$@" -x c /dev/null; fi{link_flags}
exec {shlex.quote(str(zig))} {driver} -target {target} "$@"
"""


def tool_script(zig: Path, tool: str) -> str:
    return f'#!/bin/sh\nexec {shlex.quote(str(zig))} {tool} "$@"\n'


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolchain:
    bin_dir: Path  # cc, c++, ar, ranlib wrappers
    zig: Path
    target: str  # zig target, e.g. "x86_64-linux-gnu.2.28"
    gyp_arch: str  # "x64", "arm64"
    cache_dir: Path  # zig's global and local cache (its libc++ build is reused across runs)

    def env(self) -> dict[str, str]:
        """Variables that make node-gyp, cmake and configure scripts use the wrappers."""
        cc, cxx = str(self.bin_dir / "cc"), str(self.bin_dir / "c++")
        return {
            "CC": cc,
            "CXX": cxx,
            "LINK": cxx,
            "AR": str(self.bin_dir / "ar"),
            "RANLIB": str(self.bin_dir / "ranlib"),
            "CC_target": cc,
            "CXX_target": cxx,
            "ZIG_GLOBAL_CACHE_DIR": str(self.cache_dir),
            "ZIG_LOCAL_CACHE_DIR": str(self.cache_dir),
        }


def write_toolchain(dest: Path, *, zig: Path, triple: str, glibc_floor: str,
                    cache_dir: Path, strip: bool = True) -> Toolchain:
    """Write the wrapper scripts into ``dest`` (created) and describe them."""
    target = zig_target(triple, glibc_floor)
    dest.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    scripts = {
        "cc": driver_script(zig, "cc", target, strip=strip),
        "c++": driver_script(zig, "c++", target, strip=strip),
        "ar": tool_script(zig, "ar"),
        "ranlib": tool_script(zig, "ranlib"),
    }
    for name, text in sorted(scripts.items()):
        path = dest / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    return Toolchain(bin_dir=dest, zig=zig, target=target, gyp_arch=gyp_arch(triple),
                     cache_dir=cache_dir)
