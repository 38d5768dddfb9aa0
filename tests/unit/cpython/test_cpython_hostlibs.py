"""The host library lookup order (pure parts; no real ELF needed)."""

from __future__ import annotations

from pathlib import Path

from factories import elf_info

from builder.cpython.hostlibs import (
    HostLibraryFinder,
    default_dirs,
    expand_origin,
    parse_ldconfig,
)


def test_parse_ldconfig() -> None:
    text = (
        "1234 libs found in cache `/etc/ld.so.cache'\n"
        "\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\n"
        "\tlibssl.so.3 (libc6) => /lib/i386-linux-gnu/libssl.so.3\n"
        "\tlibz.so.1 (libc6,x86-64, OS ABI: Linux 3.2.0) => /usr/lib/libz.so.1\n"
    )
    assert parse_ldconfig(text) == {
        "libssl.so.3": (Path("/lib/x86_64-linux-gnu/libssl.so.3"),
                        Path("/lib/i386-linux-gnu/libssl.so.3")),
        "libz.so.1": (Path("/usr/lib/libz.so.1"),),
    }


def test_expand_origin() -> None:
    assert expand_origin("$ORIGIN/../lib", Path("/p/bin")) == Path("/p/bin/../lib")
    assert expand_origin("${ORIGIN}", Path("/p")) == Path("/p")
    assert expand_origin("/abs", Path("/p")) == Path("/abs")
    assert expand_origin("$LIB/x", Path("/p")) is None
    assert expand_origin("relative", Path("/p")) is None


def test_candidates_follow_the_dynamic_linker_order() -> None:
    finder = HostLibraryFinder({"libz.so.1": (Path("/cache/libz.so.1"),)})
    rpath_only = elf_info("/p/lib/a.so", rpath=("$ORIGIN/r",))
    assert finder.candidates("libz.so.1", requester=rpath_only)[:2] == [
        Path("/p/lib/r/libz.so.1"), Path("/cache/libz.so.1")]
    both = elf_info("/p/lib/a.so", rpath=("/ignored",), runpath=("/run",))
    got = finder.candidates("libz.so.1", requester=both)
    assert got[:2] == [Path("/run/libz.so.1"), Path("/cache/libz.so.1")]
    assert got[2:] == [d / "libz.so.1" for d in default_dirs("x86_64")]
    assert default_dirs("aarch64")[:2] == (Path("/lib/aarch64-linux-gnu"),
                                           Path("/usr/lib/aarch64-linux-gnu"))


def test_finder_skips_missing_and_non_elf(tmp_path: Path) -> None:
    (tmp_path / "libz.so.1").write_text("not an elf")
    finder = HostLibraryFinder({"libz.so.1": (tmp_path / "libz.so.1",)})
    requester = elf_info(tmp_path / "a.so", runpath=(str(tmp_path / "none"),),
                         arch="no-such-arch")
    assert finder.find("libz.so.1", requester=requester) is None
