"""Source distributions: their PEP 517 build system (read without running it) and wheels built
from them offline, with locked build dependencies only (``builder.sdist.build``)."""

from builder.sdist.build import BuiltWheel, SdistInput, build_or_reuse, requires_for_build
from builder.sdist.source import BuildSystem, read_build_system, unpack_sdist

__all__ = ["BuildSystem", "BuiltWheel", "SdistInput", "build_or_reuse", "read_build_system",
           "requires_for_build", "unpack_sdist"]
