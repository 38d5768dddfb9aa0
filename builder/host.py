"""Facts about the machine builder runs on (a build machine, or an agent's node), in the
spelling of target triples. The one place they are read."""

from __future__ import annotations

import platform

# platform.machine() spellings of other systems, in target-triple spelling
_ARCH_NAMES = {"amd64": "x86_64", "arm64": "aarch64"}


def machine_arch(machine: str) -> str:
    """``uname -m`` (or its BSD/Windows spelling) as a triple's architecture."""
    lowered = machine.lower()
    return _ARCH_NAMES.get(lowered, lowered)


def arch_of(triple: str) -> str:
    """The architecture of a target triple: ``x86_64-unknown-linux-gnu`` -> ``x86_64``."""
    return triple.split("-", 1)[0]


HOST_ARCH = machine_arch(platform.machine())
HOST_TRIPLE = f"{HOST_ARCH}-unknown-linux-gnu"
