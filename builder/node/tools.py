"""Build-only tool wheels (ziglang) installed once into the cache, at a path that never moves.

zig's cache keys its builds of libc++, compiler-rt and the glibc stubs by the path of its own
``lib/`` directory: a zig unpacked into a fresh temporary prefix rebuilds them (about 40 s per
C++ flavour on two cores), the same zig at the same path reuses them (a module then builds in
seconds). So the tool wheel lives at ``<cache>/tools/<sha256>/``, filled through a sibling
directory and a rename, so a crash leaves nothing half-installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from builder.install.wheels import install_wheels
from builder.scratch import claimed_dir, collect

_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def tool_site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{_MINOR}" / "site-packages"


def installed_tool(wheel: Path, *, sha256: str, cache_dir: Path) -> Path:
    """The site-packages holding ``wheel`` (already hash-checked by the caller), installing
    it on first use."""
    final = cache_dir / "tools" / sha256
    if not final.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        collect(final.parent)  # what a killed install left (owned scratch, see below)
        with claimed_dir(final.parent, prefix=f".{sha256[:12]}-") as work:
            install_wheels([(wheel, sha256)], python_dir=work, minor=_MINOR)
            try:
                work.rename(final)
            except OSError:
                if not final.is_dir():  # not a concurrent install that won the race
                    raise
    return tool_site_packages(final)
