"""Importing from a root filesystem: symlinks and library lookups stay inside the root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from elf_bytes import write_elf
from factories import elf_info

from builder.cpython.importer import sysroot_prefix
from builder.cpython.sysroot import (
    SysrootLibraryFinder,
    inner_path,
    ld_so_conf_dirs,
    resolve_in_root,
)
from builder.errors import BuilderError


def test_absolute_links_point_into_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("/usr/lib")  # as merged-/usr Debian has it: absolute
    (root / "usr/lib/libz.so.1.2").write_text("z")
    (root / "usr/lib/libz.so.1").symlink_to("/lib/libz.so.1.2")
    assert resolve_in_root(root, "/lib/libz.so.1") == root / "usr/lib/libz.so.1.2"
    assert resolve_in_root(root, PurePosixPath("/lib/../lib/./x")) == root / "usr/lib/x"


def test_dotdot_stops_at_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a/up").symlink_to("../../../../etc")
    assert resolve_in_root(root, "/a/up/passwd") == root / "etc/passwd"


def test_link_loops_are_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "x").symlink_to("/y")
    (root / "y").symlink_to("/x")
    with pytest.raises(BuilderError, match="too many levels of symbolic links"):
        resolve_in_root(root, "/x/z")


def test_ld_so_conf_is_read_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/ld.so.conf.d").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_text("# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/x\n")
    (root / "etc/ld.so.conf.d/b.conf").write_text("/usr/lib/b\n")
    (root / "etc/ld.so.conf.d/a.conf").write_text("/usr/local/lib  # local\n")
    assert ld_so_conf_dirs(root) == (PurePosixPath("/usr/local/lib"),
                                     PurePosixPath("/usr/lib/b"), PurePosixPath("/opt/x"))


def _arm_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    lib = root / "usr/lib/aarch64-linux-gnu"
    write_elf(lib / "libssl.so.3", "aarch64")
    write_elf(root / "usr/lib/libx86.so.1", "x86_64")
    (root / "lib").symlink_to("/usr/lib")
    return root


def test_finder_takes_the_roots_library_of_the_requesters_arch(tmp_path: Path) -> None:
    root = _arm_root(tmp_path)
    finder = SysrootLibraryFinder.for_root(root)
    requester = elf_info(root / "usr/lib/python3.11/lib-dynload/_ssl.so", arch="aarch64")
    found = finder.find("libssl.so.3", requester=requester)
    assert found == root / "usr/lib/aarch64-linux-gnu/libssl.so.3"
    assert finder.recorded(found) == "/usr/lib/aarch64-linux-gnu/libssl.so.3"
    assert finder.find("libx86.so.1", requester=requester) is None  # another arch
    # the host's own libraries are never candidates
    assert all(c.is_relative_to(root) for c in finder.candidates("libc.so.6",
                                                                  requester=requester))


def test_finder_expands_origin_and_absolute_rpaths_inside_the_root(tmp_path: Path) -> None:
    root = _arm_root(tmp_path)
    write_elf(root / "opt/py/lib/libffi.so.8", "aarch64")
    finder = SysrootLibraryFinder.for_root(root)
    by_origin = elf_info(root / "opt/py/bin/python3.11", arch="aarch64",
                         runpath=("$ORIGIN/../lib",))
    assert finder.find("libffi.so.8", requester=by_origin) == root / "opt/py/lib/libffi.so.8"
    absolute = elf_info(tmp_path / "staging/python/bin/python3.11", arch="aarch64",
                        rpath=("/opt/py/lib",))
    assert finder.find("libffi.so.8", requester=absolute) == root / "opt/py/lib/libffi.so.8"


def test_prefix_given_below_or_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert sysroot_prefix(root, root / "usr") == root / "usr"
    assert sysroot_prefix(root, Path("/usr")) == root / "usr"
    assert inner_path(root, root / "usr") == PurePosixPath("/usr")


def test_sysroot_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="the sysroot is not a directory"):
        SysrootLibraryFinder.for_root(tmp_path / "missing")
