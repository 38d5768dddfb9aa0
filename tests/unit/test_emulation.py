"""Building for another architecture: qemu-user registered and the target's C library given."""

from __future__ import annotations

from pathlib import Path

from builder.emulation import emulation_problem


def _binfmt(tmp_path: Path, state: str | None) -> Path:
    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    if state is not None:
        (binfmt / "qemu-aarch64").write_text(f"{state}\ninterpreter /usr/bin/qemu\n")
    return binfmt


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "arm64"
    (root / "lib").mkdir(parents=True)
    (root / "lib/ld-linux-aarch64.so.1").write_bytes(b"\x7fELF")
    return root


def test_native_builds_need_nothing(tmp_path: Path) -> None:
    assert emulation_problem("x86_64", "x86_64", env={}, binfmt=tmp_path / "none") is None


def test_foreign_build_needs_qemu_registered(tmp_path: Path) -> None:
    for state in (None, "disabled"):
        binfmt = tmp_path / str(state)
        binfmt.mkdir()
        problem = emulation_problem("aarch64", "x86_64", env={"QEMU_LD_PREFIX": "/x"},
                                    binfmt=_binfmt(binfmt, state))
        assert problem is not None and "not registered with binfmt_misc" in problem.what
        assert problem.hint is not None and "qemu-user-static" in problem.hint


def test_foreign_build_needs_the_targets_c_library(tmp_path: Path) -> None:
    binfmt = _binfmt(tmp_path, "enabled")
    missing = emulation_problem("aarch64", "x86_64", env={}, binfmt=binfmt)
    assert missing is not None and "QEMU_LD_PREFIX is not set" in missing.what
    empty = tmp_path / "empty"
    empty.mkdir()
    wrong = emulation_problem("aarch64", "x86_64", env={"QEMU_LD_PREFIX": str(empty)},
                              binfmt=binfmt)
    assert wrong is not None and "has no /lib/ld-linux-aarch64.so.1" in wrong.what
    good = {"QEMU_LD_PREFIX": str(_root(tmp_path))}
    assert emulation_problem("aarch64", "x86_64", env=good, binfmt=binfmt) is None
