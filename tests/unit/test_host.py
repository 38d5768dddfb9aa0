"""The host's facts, in target-triple spelling."""

from __future__ import annotations

import platform

import pytest

from builder.host import HOST_ARCH, HOST_TRIPLE, arch_of, machine_arch


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "x86_64"), ("AMD64", "x86_64"),
                                               ("amd64", "x86_64"), ("aarch64", "aarch64"),
                                               ("arm64", "aarch64"), ("riscv64", "riscv64")])
def test_machine_names_in_triple_spelling(machine: str, arch: str) -> None:
    assert machine_arch(machine) == arch


def test_the_host_is_this_machine() -> None:
    arch = machine_arch(platform.machine())
    assert (arch, f"{arch}-unknown-linux-gnu") == (HOST_ARCH, HOST_TRIPLE)
    assert arch_of(HOST_TRIPLE) == HOST_ARCH
    assert arch_of("aarch64-unknown-linux-gnu") == "aarch64"
