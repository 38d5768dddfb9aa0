"""The archive extraction itself (``extract_bundle``, ``LayerExtraction``), called directly:
what it writes (modes, implicit directories, counts), and each limit at its boundary (members,
metadata sizes, the unpacked-bytes cap, free disk space), with the whole refusal message."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from agent_factories import (
    DATA,
    RUN_SCRIPT,
    M,
    base_members,
    canonical,
    dir_,
    link,
    manifest_dict,
    manifest_member,
    raw_bundle,
    tar_bytes,
)

from builder.agent import Limits
from builder.agent.errors import REFUSED_HINT, RefusedBundleError
from builder.agent.extract import LayerExtraction, extract_bundle
from builder.agent.manifest_check import CheckedManifest, Counted, Expectation, check_manifest
from builder.errors import BuilderError

# every extraction here twice: the C batch writer and the Python writer (conftest.py)
pytestmark = pytest.mark.usefixtures("writer_kind")


SIZE = len(RUN_SCRIPT) + len(DATA)  # what manifest_dict() declares: 2 files, 30 bytes
SERVICE_DEF = b'{"name": "demo"}\n'


def _checked(raw: bytes) -> CheckedManifest:
    return check_manifest(raw, Expectation(sha256="0" * 64, vouched_by="test"), where="test")


def extract(tmp_path: Path, members: list[M], *, limits: Limits | None = None,
            sha256: str | None = None, size: int | None = None
            ) -> tuple[CheckedManifest, Counted]:
    archive, sha = raw_bundle(tmp_path / "b.tar.zst", members)
    with archive.open("rb") as raw:
        return extract_bundle(raw, tmp_path / "work", sha256=sha256 or sha, size=size,
                              on_manifest=_checked, limits=limits or Limits(), where="W")


def refusal(tmp_path: Path, members: list[M], **kwargs: object) -> BuilderError:
    with pytest.raises(BuilderError) as info:
        extract(tmp_path, members, **kwargs)  # type: ignore[arg-type]
    return info.value


def valid(*extra: M) -> list[M]:
    return [manifest_member(manifest_dict()), *base_members(), *extra]


def test_what_is_written_and_counted(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        manifest, counted = extract(
            tmp_path, [manifest_member(manifest_dict()), M("service-def.json", SERVICE_DEF),
                       M("app/bin/run", RUN_SCRIPT, mode=0o700), dir_("app/bin"),
                       M("app/lib/data.txt", DATA, mode=0o600), link("app/lib/top", "..")])
    finally:
        os.umask(old)
    work = tmp_path / "work"
    assert counted == Counted(app_files=2, app_bytes=SIZE, service_def_bytes=len(SERVICE_DEF))
    assert (manifest.name, manifest.files, manifest.unpacked_bytes) == ("demo", 2, SIZE)
    assert (work / "manifest.json").read_bytes() == canonical(manifest_dict())
    assert (work / "service-def.json").read_bytes() == SERVICE_DEF
    modes = {p.relative_to(work).as_posix(): p.lstat().st_mode & 0o7777
             for p in work.rglob("*") if not p.is_symlink()}
    assert modes == {"manifest.json": 0o644, "service-def.json": 0o644, "app": 0o755,
                     "app/bin": 0o755, "app/bin/run": 0o755, "app/lib": 0o755,
                     "app/lib/data.txt": 0o644}
    assert (work / "app/lib/top").readlink() == Path("..")  # a link to app/ itself is fine


def test_without_a_store_files_are_neither_stamped_nor_linked(tmp_path: Path) -> None:
    """No objects (``objects=None``): each file is the work directory's alone, with the time it
    was written (the 1980 stamp marks the store's objects only)."""
    extract(tmp_path, valid())
    for name in ("app/bin/run", "app/lib/data.txt"):
        st = (tmp_path / "work" / name).lstat()
        assert st.st_nlink == 1 and st.st_mtime > time.time() - 600


def test_any_execute_bit_makes_an_executable(tmp_path: Path) -> None:
    extract(tmp_path, [manifest_member(manifest_dict()), M("app/a", RUN_SCRIPT, mode=0o641),
                       M("app/b", DATA, mode=0o604)])
    assert (tmp_path / "work/app/a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "work/app/b").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("mode", [0o744, 0o654, 0o645, 0o700, 0o610, 0o601])
def test_each_execute_bit_alone_makes_an_executable(tmp_path: Path, mode: int) -> None:
    """The owner's, the group's or the others' execute bit: any one of them is enough."""
    extract(tmp_path, [manifest_member(manifest_dict()), M("app/a", RUN_SCRIPT, mode=mode),
                       M("app/b", DATA, mode=mode & ~0o111)])
    assert (tmp_path / "work/app/a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "work/app/b").stat().st_mode & 0o777 == 0o644


def test_an_implicit_directory_may_be_declared_once_later(tmp_path: Path) -> None:
    members = [manifest_member(manifest_dict()), M("app/x/y/run", RUN_SCRIPT), dir_("app/x"),
               M("app/x/data", DATA)]
    assert extract(tmp_path, members)[1].app_files == 2
    error = refusal(tmp_path / "again", [*members, dir_("app/x")])
    assert (error.what, error.where, error.hint) == (
        "duplicate member: 'app/x'", "W", REFUSED_HINT)


def test_the_member_limit_is_exact(tmp_path: Path) -> None:
    assert extract(tmp_path / "ok", valid(), limits=Limits(max_members=6))[1].app_files == 2
    error = refusal(tmp_path, valid(), limits=Limits(max_members=5))
    assert (error.what, error.where) == ("more than 5 members", "W")


def test_the_unpacked_bytes_cap_is_exact(tmp_path: Path) -> None:
    extract(tmp_path / "ok", valid(), limits=Limits(max_unpacked_bytes=SIZE))
    error = refusal(tmp_path, valid(), limits=Limits(max_unpacked_bytes=SIZE - 1))
    assert (error.what, error.where) == (
        f"manifest.json declares {SIZE} bytes unpacked, above the limit of {SIZE - 1}", "W")


def test_the_metadata_limits_are_exact(tmp_path: Path) -> None:
    manifest = canonical(manifest_dict())
    limit = len(manifest)
    padded = M("service-def.json", b" " * limit)
    extract(tmp_path / "ok", valid(padded), limits=Limits(max_metadata_bytes=limit))
    error = refusal(tmp_path / "m", valid(), limits=Limits(max_metadata_bytes=limit - 1))
    assert (error.what, error.where) == (
        f"manifest.json claims {limit} bytes, more than the {limit - 1} allowed", "W")
    error = refusal(tmp_path / "s", valid(M("service-def.json", b" " * (limit + 1))),
                    limits=Limits(max_metadata_bytes=limit))
    assert error.what == f"service-def.json claims {limit + 1} bytes, more than the {limit} allowed"


@pytest.mark.parametrize(("free", "refused"), [(SIZE, False), (SIZE - 1, True)])
def test_not_enough_free_disk_space_is_refused_before_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free: int, refused: bool) -> None:
    asked: list[str] = []

    def statvfs(path: object) -> SimpleNamespace:
        asked.append(str(path))
        return SimpleNamespace(f_bavail=free, f_frsize=1)

    monkeypatch.setattr(os, "statvfs", statvfs)
    if not refused:
        extract(tmp_path, valid())
        return
    error = refusal(tmp_path, valid())
    work = tmp_path / "work"
    assert asked == [str(work)]
    assert (error.what, error.where, error.hint) == (
        f"not enough disk space: the bundle needs {SIZE} bytes, {SIZE - 1} are free", str(work),
        "free space, e.g. with `builder agent gc`")
    assert list(work.iterdir()) == []  # not even manifest.json


def test_free_space_unknown_is_not_a_refusal(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def statvfs(path: object) -> SimpleNamespace:
        raise OSError(38, "not implemented")

    monkeypatch.setattr(os, "statvfs", statvfs)
    assert extract(tmp_path, valid())[1].app_bytes == SIZE


def test_a_sparse_member_is_refused(tmp_path: Path) -> None:
    members = [manifest_member(manifest_dict()), *base_members()]
    raw = bytearray(tar_bytes([*members, M("app/lib/sparse", b"")], fmt=tarfile.GNU_FORMAT))
    # turn the last member (a regular file) into a GNU sparse one: type 'S', checksum redone
    header = raw.rfind(b"app/lib/sparse\0")
    raw[header + 156:header + 157] = tarfile.GNUTYPE_SPARSE
    raw[header + 148:header + 156] = b" " * 8
    raw[header + 148:header + 155] = b"%06o\0" % sum(raw[header:header + 512])
    archive, sha = raw_bundle(tmp_path / "b.tar.zst", bytes(raw))
    with archive.open("rb") as fh, pytest.raises(RefusedBundleError) as info:
        extract_bundle(fh, tmp_path / "work", sha256=sha, size=None, on_manifest=_checked,
                       limits=Limits(), where="W")
    assert info.value.what == "sparse file refused: 'app/lib/sparse'"
    assert not (tmp_path / "work/app/lib/sparse").exists()


def test_the_archive_size_is_checked_when_known(tmp_path: Path) -> None:
    archive, _ = raw_bundle(tmp_path / "x.tar.zst", valid())
    size = archive.stat().st_size
    extract(tmp_path / "ok", valid(), size=size)
    error = refusal(tmp_path, valid(), size=size + 1)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert error.what == f"the archive changed while it was read (sha256 {sha}, expected {sha})"
    assert (error.where, error.hint) == ("W", "something rewrote the file; try again")


@pytest.mark.parametrize(("members", "what"), [
    ([manifest_member(manifest_dict()), M("./", type=tarfile.DIRTYPE)],
     "member with an invalid name: '.'"),
    ([manifest_member(manifest_dict()), *base_members(), link("app/lib/empty", "")],
     "symlink with an empty target: 'app/lib/empty'"),
    ([manifest_member(manifest_dict()), *base_members(), link("app/lib/up", "../..")],
     "symlink leaving app/: 'app/lib/up' -> '../..'"),
    ([manifest_member(manifest_dict()), *base_members(), M("app/bin/run/x", b"")],
     "member below the file app/bin/run: 'app/bin/run/x'"),
    ([manifest_member(manifest_dict()), *base_members(), link("app/l", "lib"),
      M("app/l/x", b"")], "member written through the symlink app/l: 'app/l/x'"),
    ([manifest_member(manifest_dict()), *base_members(), M("app/bin/g", b"", mode=0o2755)],
     "set-uid/set-gid bit refused: 'app/bin/g'"),
    ([manifest_member(manifest_dict()), M("service-def.json", type=tarfile.DIRTYPE)],
     "service-def.json is not a regular file"),
    ([manifest_member(manifest_dict()), M("x/y", b"")],
     "unexpected member outside app/: 'x/y' (a bundle holds only manifest.json, "
     "service-def.json and app/)"),
    ([M("manifest.json", type=tarfile.DIRTYPE)], "manifest.json is not a regular file"),
])
def test_refusals_name_the_member(tmp_path: Path, members: list[M], what: str) -> None:
    error = refusal(tmp_path, members)
    assert (error.what, error.where, error.hint) == (what, "W", REFUSED_HINT)


def test_the_file_budget_is_exact(tmp_path: Path) -> None:
    manifest = manifest_dict(files=3, unpacked_bytes=SIZE)
    extract(tmp_path / "ok", [manifest_member(manifest), *base_members(), M("app/e", b"")])
    error = refusal(tmp_path, [manifest_member(manifest), *base_members(), M("app/e", b""),
                               M("app/f", b"")])
    assert error.what == "more files than the 3 manifest.json declares (at 'app/f')"


def test_a_layer_counts_what_it_wrote(tmp_path: Path) -> None:
    manifest = _checked(canonical(manifest_dict()))
    extraction = LayerExtraction(manifest=manifest, limits=Limits(), where="layer")
    with pytest.raises(RefusedBundleError) as info:
        extraction.counted(service_def_bytes=None)
    assert (info.value.what, info.value.where) == ("the layer was not extracted", "layer")
    members = [M(".", type=tarfile.DIRTYPE), M("./bin/run", RUN_SCRIPT, mode=0o755),
               M("lib/data.txt", DATA)]
    app = tmp_path / "entry" / "app"
    app.mkdir(parents=True)
    extraction(io.BytesIO(tar_bytes(members)), app)
    assert extraction.counted(service_def_bytes=7) == Counted(app_files=2, app_bytes=SIZE,
                                                             service_def_bytes=7)
    assert (app / "bin/run").read_bytes() == RUN_SCRIPT
    assert sorted(p.name for p in app.parent.iterdir()) == ["app"]


def test_a_member_above_the_byte_budget_is_named(tmp_path: Path) -> None:
    error = refusal(tmp_path, [manifest_member(manifest_dict(unpacked_bytes=25)),
                               *base_members()])
    assert error.what == ("member 'app/lib/data.txt' claims 10 bytes, more than the 5 left of "
                          "the 25 bytes manifest.json declares")


def test_a_refused_archive_that_is_not_the_one_vouched_for_names_both_digests(
        tmp_path: Path) -> None:
    archive, actual = raw_bundle(tmp_path / "b.tar.zst",
                                 [manifest_member(manifest_dict()), M("/etc/evil", b"x")])
    with archive.open("rb") as raw, pytest.raises(RefusedBundleError) as info:
        extract_bundle(raw, tmp_path / "work", sha256="0" * 64, size=None, on_manifest=_checked,
                       limits=Limits(), where="W")
    assert info.value.what == (f"the archive changed while it was read (sha256 {actual}, "
                               f"expected {'0' * 64})")
    assert isinstance(info.value.__cause__, RefusedBundleError)  # what was refused first
    assert info.value.__cause__.what == "member with an absolute path: '/etc/evil'"


def extract_layer(tmp_path: Path, data: bytes) -> LayerExtraction:
    """``data`` extracted as a layer, in a thread: a reader that waits for more than the
    stream holds fails the test instead of hanging it."""
    extraction = LayerExtraction(manifest=_checked(canonical(manifest_dict())), limits=Limits(),
                                 where="layer")
    app = tmp_path / "entry" / "app"
    app.mkdir(parents=True)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            extraction(io.BytesIO(data), app)
        except BaseException as exc:  # handed to the test
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the layer extraction waits past the end of its stream"
    if failed:
        raise failed[0]
    return extraction


LAYER = [M(".", type=tarfile.DIRTYPE), M("bin/run", RUN_SCRIPT, mode=0o755),
         M("lib/data.txt", DATA)]


def test_a_layer_ending_without_end_blocks_is_read_to_its_end(tmp_path: Path) -> None:
    data = tar_bytes(LAYER)
    end = data.rstrip(b"\0")
    whole = end + bytes(-len(end) % 512)  # the last member, no end-of-archive blocks
    extraction = extract_layer(tmp_path, whole)
    assert extraction.counted(service_def_bytes=None).app_files == 2
    assert (tmp_path / "entry/app/lib/data.txt").read_bytes() == DATA


def test_a_truncated_layer_is_refused(tmp_path: Path) -> None:
    data = tar_bytes(LAYER)
    with pytest.raises(tarfile.ReadError, match=r"^unexpected end of data$"):
        extract_layer(tmp_path, data[:data.index(DATA) + 5])


@pytest.mark.parametrize(("member", "what"), [
    (M("../evil", b"x"), "member leaving the destination: '../evil'"),
    (M("lib/.wh.data.txt", b""), "whiteout entry 'lib/.wh.data.txt': not a layer builder made"),
    (M("lib/x", b"", mode=0o4755), "set-uid/set-gid bit refused: 'app/lib/x'"),
])
def test_a_layer_refusal_names_the_layer(tmp_path: Path, member: M, what: str) -> None:
    with pytest.raises(RefusedBundleError) as info:
        extract_layer(tmp_path, tar_bytes([*LAYER, member]))
    assert (info.value.what, info.value.where) == (what, "layer")


def test_a_link_resolving_outside_through_another_is_named_with_its_target(
        tmp_path: Path) -> None:
    error = refusal(tmp_path, valid(link("app/lib/up", ".."), link("app/lib/out", "up/..")))
    assert (error.what, error.where) == ("symlink resolving outside app/ through other links: "
                                         "'app/lib/out' -> 'up/..'", "W")


def test_links_resolving_to_app_or_below_through_others_are_kept(tmp_path: Path) -> None:
    extract(tmp_path, valid(link("app/lib/up", ".."), link("app/lib/self", "up"),
                            link("app/lib/bin", "self/bin")))
    work = tmp_path / "work"
    assert (work / "app/lib/self").resolve() == (work / "app").resolve()
    assert (work / "app/lib/bin/run").read_bytes() == RUN_SCRIPT


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_entry_directory_is_0755_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        extract(tmp_path, valid())
    finally:
        os.umask(old)
    assert (tmp_path / "work").stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize("vouched", [True, False])
def test_a_corrupt_archive_is_refused_as_that_unless_it_is_not_the_one_vouched_for(
        tmp_path: Path, vouched: bool) -> None:
    data = tar_bytes(valid())
    archive, actual = raw_bundle(tmp_path / "b.tar.zst", data[:2048 + 100])
    with archive.open("rb") as raw, pytest.raises(RefusedBundleError) as info:
        extract_bundle(raw, tmp_path / "work", sha256=actual if vouched else "0" * 64,
                       size=None, on_manifest=_checked, limits=Limits(), where="W")
    if vouched:
        assert (info.value.what, info.value.where) == (
            "truncated or corrupt archive: truncated header", "W")
    else:
        assert info.value.what == (f"the archive changed while it was read (sha256 {actual}, "
                                   f"expected {'0' * 64})")
    assert isinstance(info.value.__cause__, tarfile.ReadError)


def test_an_archive_without_app_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, [manifest_member(manifest_dict(files=0, unpacked_bytes=0)),
                               M("service-def.json", SERVICE_DEF)])
    assert (error.what, error.where) == ("the archive has no app/ directory", "W")


def test_an_archive_of_nothing_but_its_end_is_empty(tmp_path: Path) -> None:
    archive, _ = raw_bundle(tmp_path / "b.tar.zst", bytes(1024))
    with archive.open("rb") as raw, pytest.raises(RefusedBundleError) as info:
        extract_bundle(raw, tmp_path / "work", sha256=hashlib.sha256(archive.read_bytes())
                       .hexdigest(), size=None, on_manifest=_checked, limits=Limits(), where="W")
    assert (info.value.what, info.value.where) == ("the archive is empty", "W")


@pytest.mark.parametrize(("member", "what"), [
    (M("app/nul", b"", pax={"path": "app/a\x00b"}), "member with an invalid name: 'app/a\\x00b'"),
    (M("app/l", type=tarfile.SYMTYPE, linkname="x", pax={"linkpath": "a\x00b"}),
     "symlink with an empty target: 'app/l'"),
    (M("app/z", type=b"Z"), "member of unsupported type b'Z': 'app/z'"),
    (M("app/v", type=tarfile.CONTTYPE, data=b"abc", claimed_size=3), None),  # contiguous: a file
])
def test_names_links_and_types_a_header_can_carry(tmp_path: Path, member: M,
                                                  what: str | None) -> None:
    if what is None:
        manifest = manifest_dict(files=3, unpacked_bytes=SIZE + 3)
        extract(tmp_path, [manifest_member(manifest), *base_members(), member])
        assert (tmp_path / "work" / member.name).read_bytes() == member.data
        return
    error = refusal(tmp_path, valid(member))
    assert (error.what, error.where) == (what, "W")


def test_a_file_arriving_in_several_pieces_is_counted_whole(tmp_path: Path) -> None:
    """A member longer than one read of the decompressed stream comes in several chunks."""
    big = os.urandom(1024) * 3072  # 3 MiB
    manifest = manifest_dict(files=3, unpacked_bytes=SIZE + len(big))
    counted = extract(tmp_path, [manifest_member(manifest), *base_members(),
                                 M("app/lib/big", big)])[1]
    assert (counted.app_files, counted.app_bytes) == (3, SIZE + len(big))
    assert (tmp_path / "work/app/lib/big").read_bytes() == big


def test_the_blocks_of_every_inode_written_are_counted(tmp_path: Path) -> None:
    """disk_bytes and new_bytes (the store's size of an entry, what gc frees): the blocks of
    the entry directory, every directory, file and symlink extracted. A long link target does
    not fit in the inode (ext4 keeps up to 60 bytes there): the link takes a block of its own."""
    long_target = "./" * 100 + "data.txt"  # app/lib/data.txt
    counted = extract(tmp_path, valid(link("app/lib/long", long_target)))[1]
    work = tmp_path / "work"
    assert (work / "app/lib/long").read_bytes() == DATA
    blocks = {st.st_ino: st.st_blocks * 512 for st in (p.lstat() for p in [work, *work.rglob("*")])}
    assert counted.disk_bytes == counted.new_bytes == sum(blocks.values())
