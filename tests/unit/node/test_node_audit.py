"""The ELF audit: platform of each file, verdicts under the glibc/libstdc++ policy."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.node.audit import (
    NativeFile,
    Platform,
    Verdict,
    _platform,
    audit_tree,
    judge,
    read_native,
)
from builder.recipe.node import Exemption

GLIBC_LIBS = ("libc.so.6", "ld-linux-x86-64.so.2")


def native(path: str = "node_modules/m/build/Release/m.node", **changes: object) -> NativeFile:
    base = NativeFile(path=path, size=10, arch="x86_64", platform=Platform.TARGET,
                      glibc=(2, 17), glibcxx=None, needed=GLIBC_LIBS, has_debug=False,
                      verdict=Verdict.OK)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("arch", "osabi", "needed", "interp", "expected"), [
    ("x86_64", "ELFOSABI_SYSV", GLIBC_LIBS, None, Platform.TARGET),
    ("x86_64", "ELFOSABI_LINUX", (), None, Platform.TARGET),  # static: ripgrep
    ("aarch64", "ELFOSABI_SYSV", GLIBC_LIBS, None, Platform.OTHER_ARCH),
    ("x86_64", "ELFOSABI_FREEBSD", ("libc.so.7",), None, Platform.OTHER_OS),
    ("x86_64", "ELFOSABI_SYSV", ("libstdc++.so.6", "libc.musl-x86_64.so.1"), None,
     Platform.MUSL),
    ("x86_64", "ELFOSABI_SYSV", (), "/lib/ld-musl-x86_64.so.1", Platform.MUSL),
])
def test_platform(arch: str, osabi: str, needed: tuple[str, ...], interp: str | None,
                  expected: Platform) -> None:
    assert _platform(arch, osabi, needed, interp, "x86_64") is expected


EXEMPT = (Exemption(pattern="node_modules/broker/*", reason="desktop only"),)


@pytest.mark.parametrize(("file", "verdict", "reason"), [
    (native(), Verdict.OK, ""),
    (native(glibc=(2, 28)), Verdict.OK, ""),
    (native(glibc=(2, 34)), Verdict.GLIBC_TOO_NEW, "needs GLIBC_2.34 (floor 2.28)"),
    (native(needed=("libstdc++.so.6", *GLIBC_LIBS), glibcxx=(3, 4, 30)),
     Verdict.NEEDS_LIBSTDCXX, "needs libstdc++.so.6 (GLIBCXX_3.4.30)"),
    (native(platform=Platform.MUSL, glibc=None), Verdict.FOREIGN, "built for musl"),
    (native("node_modules/broker/x.so", glibc=(2, 34)), Verdict.EXEMPT, "desktop only"),
    # an exempt pattern naming a directory covers the files below it
    (native("node_modules/broker/bin/tool", glibc=(2, 34)), Verdict.EXEMPT, "desktop only"),
])
def test_judge(file: NativeFile, verdict: Verdict, reason: str) -> None:
    judged = judge(file, glibc_floor=(2, 28), exemptions=EXEMPT)
    assert (judged.verdict, judged.reason) == (verdict, reason)


def test_audit_of_a_real_tree(tmp_path: Path) -> None:
    elf = Path(sys.executable).resolve()
    module = tmp_path / "node_modules/m/build/Release/m.node"
    module.parent.mkdir(parents=True)
    shutil.copyfile(elf, module)
    (tmp_path / "node_modules/m/index.js").write_text("module.exports = 1\n")
    (tmp_path / "node_modules/m/link.node").symlink_to(module)
    info = read_native(elf, rel="python", target_arch="x86_64")
    if info.arch != "x86_64" or info.glibc is None:
        pytest.skip("needs an x86_64 glibc Python to read")
    audit = audit_tree(tmp_path, target_arch="x86_64", glibc_floor=(9, 99))
    assert [f.path for f in audit.files] == ["node_modules/m/build/Release/m.node"]
    assert audit.computed_floor == info.glibc
    audit.check()
    strict = audit_tree(tmp_path, target_arch="x86_64", glibc_floor=(2, 0))
    assert strict.violations == strict.files
    with pytest.raises(BuilderError) as err:
        strict.check()
    assert err.value.what.startswith("1 native file would not run on glibc 2.0 without "
                                     "libstdc++:\n  node_modules/m/build/Release/m.node: needs")
    foreign = audit_tree(tmp_path, target_arch="aarch64", glibc_floor=(2, 0))
    assert [f.verdict for f in foreign.files] == [Verdict.FOREIGN]
    assert foreign.computed_floor is None
