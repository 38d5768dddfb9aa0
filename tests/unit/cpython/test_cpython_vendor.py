"""The vendoring plan on fabricated ELF facts (no real ELF, no patchelf)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import elf_info

from builder.cpython.vendor import (
    RpathEdit,
    VendoredLib,
    is_glibc,
    origin_rpath,
    plan_vendoring,
    unresolved_needs,
)
from builder.elf import ElfInfo
from builder.errors import BuilderError

HOST = Path("/usr/lib/x86_64-linux-gnu")


class FakeHost:
    """A host with a few libraries (name -> ElfInfo); records what was asked."""

    def __init__(self, libs: dict[str, ElfInfo]) -> None:
        self.libs = libs
        self.asked: list[tuple[str, str]] = []

    def find(self, name: str, *, requester: ElfInfo) -> Path | None:
        self.asked.append((name, str(requester.path)))
        return HOST / name if name in self.libs else None

    def read(self, path: Path) -> ElfInfo:
        return self.libs[path.name]


def host_lib(name: str, *needed: str) -> ElfInfo:
    return elf_info(HOST / name, needed=needed, soname=name)


PREFIX_RUNPATH = ("/opt/py/lib",)
TREE = {
    "python/bin/python3.11": elf_info("python/bin/python3.11", elf_type="ET_EXEC",
                                      needed=("libpython3.11.so.1.0", "libc.so.6"),
                                      runpath=PREFIX_RUNPATH),
    "python/lib/libpython3.11.so.1.0": elf_info("python/lib/libpython3.11.so.1.0",
                                                needed=("libm.so.6", "libc.so.6"),
                                                runpath=PREFIX_RUNPATH),
    "python/lib/python3.11/lib-dynload/_ssl.so": elf_info(
        "python/lib/python3.11/lib-dynload/_ssl.so",
        needed=("libssl.so.3", "libcrypto.so.3", "libc.so.6"), runpath=PREFIX_RUNPATH),
    "python/lib/python3.11/lib-dynload/_hashlib.so": elf_info(
        "python/lib/python3.11/lib-dynload/_hashlib.so", needed=("libcrypto.so.3",)),
    "python/lib/python3.11/lib-dynload/_bisect.so": elf_info(
        "python/lib/python3.11/lib-dynload/_bisect.so", runpath=PREFIX_RUNPATH),
    "python/lib/python3.11/lib-dynload/_static.so": elf_info(
        "python/lib/python3.11/lib-dynload/_static.so"),
    "python/lib/python3.11/config-3.11/python.o": elf_info(
        "python/lib/python3.11/config-3.11/python.o", elf_type="ET_REL"),
}
LIBS = {
    "libssl.so.3": host_lib("libssl.so.3", "libcrypto.so.3", "libc.so.6"),
    "libcrypto.so.3": host_lib("libcrypto.so.3", "libz.so.1", "libpthread.so.0",
                               "ld-linux-x86-64.so.2"),
    "libz.so.1": host_lib("libz.so.1", "libc.so.6"),
}


def test_plan() -> None:
    host = FakeHost(LIBS)
    plan = plan_vendoring(TREE, provided=["libpython3.11.so", "libpython3.11.so.1.0"],
                          finder=host, read=host.read)
    assert plan.vendored == (
        VendoredLib(name="libcrypto.so.3", source=HOST / "libcrypto.so.3",
                    dest="python/lib/libcrypto.so.3",
                    needed_by=("libssl.so.3", "python/lib/python3.11/lib-dynload/_hashlib.so",
                               "python/lib/python3.11/lib-dynload/_ssl.so")),
        VendoredLib(name="libssl.so.3", source=HOST / "libssl.so.3", dest="python/lib/libssl.so.3",
                    needed_by=("python/lib/python3.11/lib-dynload/_ssl.so",)),
        VendoredLib(name="libz.so.1", source=HOST / "libz.so.1", dest="python/lib/libz.so.1",
                    needed_by=("libcrypto.so.3",)),
    )
    assert plan.rpath_edits == (
        RpathEdit(path="python/bin/python3.11", rpath="$ORIGIN/../lib"),
        RpathEdit(path="python/lib/libcrypto.so.3", rpath="$ORIGIN"),
        RpathEdit(path="python/lib/libpython3.11.so.1.0", rpath="$ORIGIN"),
        RpathEdit(path="python/lib/libssl.so.3", rpath="$ORIGIN"),
        RpathEdit(path="python/lib/libz.so.1", rpath="$ORIGIN"),
        RpathEdit(path="python/lib/python3.11/lib-dynload/_bisect.so", rpath="$ORIGIN/../.."),
        RpathEdit(path="python/lib/python3.11/lib-dynload/_hashlib.so", rpath="$ORIGIN/../.."),
        RpathEdit(path="python/lib/python3.11/lib-dynload/_ssl.so", rpath="$ORIGIN/../.."),
    )
    assert plan.system == ("ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0")
    assert plan.vendored_names == ("libcrypto.so.3", "libssl.so.3", "libz.so.1")
    # each library is looked up once, glibc and provided libraries never
    assert sorted(name for name, _ in host.asked) == ["libcrypto.so.3", "libssl.so.3",
                                                      "libz.so.1"]


def test_plan_is_deterministic_and_hashable() -> None:
    host = FakeHost(LIBS)
    one = plan_vendoring(TREE, provided=["libpython3.11.so.1.0"], finder=host, read=host.read)
    two = plan_vendoring(dict(reversed(list(TREE.items()))), provided=["libpython3.11.so.1.0"],
                         finder=host, read=host.read)
    assert one == two
    assert hash(one) == hash(two)


def test_plan_reports_every_missing_library_at_once() -> None:
    host = FakeHost({"libssl.so.3": host_lib("libssl.so.3", "libmissing2.so")})
    tree = {
        "python/lib/a.so": elf_info("python/lib/a.so", needed=("libssl.so.3", "libmissing1.so")),
        "python/lib/b.so": elf_info("python/lib/b.so", needed=("libmissing1.so",)),
    }
    with pytest.raises(BuilderError) as info:
        plan_vendoring(tree, provided=[], finder=host, read=host.read)
    assert str(info.value).startswith(
        "cannot find shared libraries on this host:\n"
        "    libmissing1.so (needed by python/lib/a.so, python/lib/b.so)\n"
        "    libmissing2.so (needed by libssl.so.3)\n"
        "  hint: install the packages"
    )


def test_plan_with_provided_library_vendors_nothing() -> None:
    tree = {"python/lib/x/y/z.so": elf_info("python/lib/x/y/z.so", needed=("libfoo.so.1",))}
    host = FakeHost({})
    plan = plan_vendoring(tree, provided=["libfoo.so.1"], finder=host, read=host.read)
    assert plan.vendored == ()
    assert plan.rpath_edits == (RpathEdit(path="python/lib/x/y/z.so", rpath="$ORIGIN/../.."),)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("python/lib/libx.so", "$ORIGIN"),
        ("python/bin/python3.11", "$ORIGIN/../lib"),
        ("python/lib/python3.11/lib-dynload/_ssl.so", "$ORIGIN/../.."),
        ("python/lib/python3.11/site-packages/pkg/_c.so", "$ORIGIN/../../.."),
    ],
)
def test_origin_rpath(path: str, expected: str) -> None:
    assert origin_rpath(path, "python/lib") == expected


@pytest.mark.parametrize(
    ("name", "glibc"),
    [
        ("libc.so.6", True), ("libm.so.6", True), ("libpthread.so.0", True), ("libdl.so.2", True),
        ("librt.so.1", True), ("libutil.so.1", True), ("libresolv.so.2", True),
        ("libnsl.so.1", True), ("ld-linux-x86-64.so.2", True), ("ld-linux-aarch64.so.1", True),
        ("libanl.so.1", True), ("libmvec.so.1", True), ("libBrokenLocale.so.1", True),
        ("libnss_files.so.2", True), ("libnss_dns.so.2", True), ("libthread_db.so.1", True),
        ("libnsl.so.2", False), ("libcrypt.so.1", False), ("libssl.so.3", False),
        ("libgcc_s.so.1", False), ("libstdc++.so.6", False), ("libmagic.so.1", False),
        ("libcrypto.so.3", False), ("libmd.so.0", False),
    ],
)
def test_is_glibc(name: str, glibc: bool) -> None:
    assert is_glibc(name) is glibc


def test_unresolved_needs() -> None:
    good = {
        "python/lib/python3.11/lib-dynload/_ssl.so": elf_info(
            "x", needed=("libssl.so.3", "libc.so.6"), rpath=("$ORIGIN/../..",)),
        "python/lib/libssl.so.3": elf_info("y", needed=("libc.so.6",)),
    }
    assert unresolved_needs(good, libdir="python/lib", provided=["libssl.so.3"]) == {}
    bad = {
        "python/lib/python3.11/lib-dynload/_ssl.so": elf_info(
            "x", needed=("libssl.so.3",), runpath=("/opt/py/lib",)),
        "python/bin/python3.11": elf_info("z", needed=("libnothere.so",),
                                          rpath=("$ORIGIN/../lib",)),
    }
    assert unresolved_needs(bad, libdir="python/lib", provided=["libssl.so.3"]) == {
        "python/bin/python3.11": ("libnothere.so",),
        "python/lib/python3.11/lib-dynload/_ssl.so": ("libssl.so.3",),
    }
