"""The agent's own tar reader (``builder.agent.tarstream``): what tarfile writes, it reads the
same, in every format and whatever the chunk sizes; corrupt or truncated streams are refused."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import zstandard
from agent_factories import M, tar_bytes

from builder.agent.tarstream import ArchiveReader, Member, TarStream, _checksum_ok

T = TypeVar("T")
LONG = "app/" + "d" * 120 + "/" + "f" * 120


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


def read_all(data: bytes, size: int = 1 << 20) -> list[tuple[Member, bytes]]:
    return read_chunks(chunked(data, size))


def read_chunks(chunks: Iterator[bytes]) -> list[tuple[Member, bytes]]:
    """Every member of the stream, with the data of each regular file."""
    stream = TarStream(chunks)
    out = []
    while (member := stream.next()) is not None:
        out.append((member, stream.read_all() if member.isreg() else b""))
    return out


MEMBERS = [
    M("manifest.json", b"{}"),
    M("app", type=tarfile.DIRTYPE, mode=0o755),
    M("app/bin/run", b"#!/bin/sh\n" * 100, mode=0o755),
    M("app/link", type=tarfile.SYMTYPE, linkname="bin/run"),
    M(LONG, b"long name"),
    M("app/long-link", type=tarfile.SYMTYPE, linkname="x/" * 80 + "target"),
    M("app/empty", b""),
    M("app/block", b"z" * 512),
    M("app/dev", type=tarfile.CHRTYPE),
    M("app/hard", type=tarfile.LNKTYPE, linkname="app/bin/run"),
    M("app/fifo", type=tarfile.FIFOTYPE),
    M("app/suid", b"x", mode=0o4755),
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("size", [1, 7, 512, 1 << 20])
def test_reads_what_tarfile_reads(fmt: int, size: int) -> None:
    data = tar_bytes(MEMBERS, fmt=fmt)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        expected = [(m.name, m.type, m.mode, m.size if m.isreg() else 0, m.linkname,
                     tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                    for m in tar]
    got = [(m.name, m.type, m.mode, m.size if m.isreg() else 0, m.linkname, body)
           for m, body in read_all(data, size)]
    assert got == expected
    kinds = [(m.isreg(), m.isdir(), m.issym(), m.islnk(), m.ischr(), m.isfifo())
             for m, _ in read_all(data)]
    assert kinds[1] == (False, True, False, False, False, False)
    assert kinds[3] == (False, False, True, False, False, False)
    assert kinds[8][4] and kinds[9][3] and kinds[10][5]


def test_data_is_handed_out_as_views_of_the_chunks_read_not_copies() -> None:
    data = tar_bytes([M("app/big", b"b" * 3000), M("app/small", b"s" * 10)])
    chunks = [data[:2048], data[2048:]]  # app/big's data arrives in two chunks
    stream = TarStream(iter(chunks))
    big = stream.next()
    assert big is not None
    pieces = list(stream.data())
    assert b"".join(pieces) == b"b" * 3000
    # the chunks themselves, sliced in place
    assert [id(piece.obj) for piece in pieces] == [id(chunk) for chunk in chunks]
    assert stream.next() is not None
    (small,) = stream.data()  # buffered whole: one piece
    assert bytes(small) == b"s" * 10 and small.obj is chunks[1]


def test_ustar_prefix_and_pax_path_override_the_name() -> None:
    deep = "app/" + "p" * 90 + "/" + "q" * 60
    data = tar_bytes([M(deep, b"1")], fmt=tarfile.USTAR_FORMAT)
    assert [m.name for m, _ in read_all(data)] == [deep]
    short = "a/" + "x" * 100  # a one-character prefix
    data = tar_bytes([M(short, b"1")], fmt=tarfile.USTAR_FORMAT)
    assert data[345:347] == b"a\0"
    assert [m.name for m, _ in read_all(data)] == [short]
    data = tar_bytes([M("app/harmless", b"x", pax={"path": "app/other"})])
    assert [m.name for m, _ in read_all(data)] == ["app/other"]


def test_pax_size_and_global_headers_apply() -> None:
    info = tarfile.TarInfo("app/f")
    info.size = 3
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as tar:
        tar.addfile(info, io.BytesIO(b"abc"))
    assert [(m.name, body) for m, body in read_all(buf.getvalue())] == [("app/f", b"abc")]


def test_gnu_sparse_is_reported_never_expanded() -> None:
    data = tar_bytes([M("app/s", b"x", pax={"GNU.sparse.major": "1"})])
    [(member, _)] = read_all(data)
    assert member.issparse() and not member.isreg()
    raw = bytearray(tar_bytes([M("app/t", b"")], fmt=tarfile.GNU_FORMAT))
    raw[156:157] = tarfile.GNUTYPE_SPARSE
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    [(member, _)] = read_all(bytes(raw))
    assert member.issparse() and not member.isreg()


def test_base_256_sizes_are_read() -> None:
    raw = bytearray(tar_bytes([M("app/f", b"abc")], fmt=tarfile.GNU_FORMAT))
    raw[124:136] = b"\x80" + (3).to_bytes(11, "big")
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    assert [(m.size, body) for m, body in read_all(bytes(raw))] == [(3, b"abc")]


def test_the_stream_ends_at_the_first_zero_block_or_a_block_boundary() -> None:
    data = tar_bytes([M("app/a", b"1")])
    assert len(read_all(data + b"garbage after the end" * 100)) == 1
    one = tar_bytes([M("app/a", b"1")])
    for size in (7, 512, 1 << 20):  # the padding read as it arrives, or buffered whole
        assert len(read_all(one[:1024], size)) == 1  # no end-of-archive blocks: as tarfile


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: d[:100], "truncated header"),
    (lambda d: d[:512 + 100], "unexpected end of data"),
    (lambda d: b"", "empty file"),
    (lambda d: d[:148] + b"0000000\0" + d[156:], "bad checksum"),
    (lambda d: resum(d[:124] + b"9" * 11 + b"\0" + d[136:]),
     "invalid header: bad number b'99999999999\\x00'"),
])
def test_corrupt_streams_are_refused(damage: object, message: str) -> None:
    data = tar_bytes([M("app/a", b"x" * 1000)])
    with pytest.raises(tarfile.ReadError) as caught:
        read_all(damage(data))  # type: ignore[operator]
    assert str(caught.value) == message  # the whole message, nothing around it


def resum(data: bytes) -> bytes:
    """The first header's checksum made right again."""
    raw = bytearray(data)
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    return bytes(raw)


def test_a_malformed_pax_record_is_refused() -> None:
    data = bytearray(tar_bytes([M("app/a", b"x", pax={"path": "app/b"})]))
    at = data.find(b"path=")
    data[at - 3:at - 1] = b"99"  # the record's length no longer matches
    data[148:156] = b"%06o\0 " % (sum(data[:148]) + 256 + sum(data[156:512]))
    with pytest.raises(tarfile.ReadError, match="malformed pax record"):
        read_all(bytes(data))


def promptly(call: Callable[[], T]) -> T:
    """``call()``'s result, which must come within seconds (a reader waiting for chunks that
    never come fails the test instead of hanging it)."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the reader waits for chunks that never come"
    return out[0]


def test_the_archive_reader_hashes_every_byte_and_decompresses_in_a_thread() -> None:
    tar = tar_bytes(MEMBERS)
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(tar)
    raw = frame + zstandard.ZstdCompressor().compress(b"")  # a second (empty) frame
    reader = ArchiveReader(io.BytesIO(raw))
    assert b"".join(reader.chunks()) == tar
    assert promptly(reader.finish) == (hashlib.sha256(raw).hexdigest(), len(raw))
    assert promptly(lambda: list(reader.chunks())) == []  # ended: nothing more, never a wait
    garbage = frame[:100] + b"not zstd" * 1000
    bad = ArchiveReader(io.BytesIO(garbage))
    with pytest.raises(zstandard.ZstdError):
        b"".join(bad.chunks())
    assert promptly(lambda: list(bad.chunks())) == []  # the error ended it: no wait for more
    bad.close()
    assert bad.rest_digest() == hashlib.sha256(garbage).hexdigest()


def record(key: bytes, value: bytes) -> bytes:
    """One pax record, ``"<length> <key>=<value>\\n"`` (the length counts itself)."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length += 1
    return b"%d" % length + body


def with_pax(records: bytes, name: str = "app/a", data: bytes = b"x") -> bytes:
    """A pax extended header holding exactly ``records``, then a ustar member."""
    ext = tarfile.TarInfo("././@PaxHeader")
    ext.type, ext.size = tarfile.XHDTYPE, len(records)
    info = tarfile.TarInfo(name)
    info.size = len(data)

    def padded(raw: bytes) -> bytes:
        return raw + b"\0" * (-len(raw) % 512)

    return (ext.tobuf(tarfile.USTAR_FORMAT) + padded(records)
            + info.tobuf(tarfile.USTAR_FORMAT) + padded(data) + b"\0" * 1024)


def test_every_record_of_a_pax_header_applies() -> None:
    """Several records in one header (of different lengths), names holding ``=``."""
    members = [
        M("app/l", type=tarfile.SYMTYPE, linkname="t",
          pax={"comment": "a comment, longer than the others" * 3,
               "path": "app/a=b/" + "n" * 150, "linkpath": "x=y/" * 40 + "t"}),
        M("app/f", b"data", pax={"mtime": "1", "path": "app/k=v=w", "comment": "c"}),
    ]
    data = tar_bytes(members)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        expected = [(m.name, m.linkname) for m in tar]
    assert [(m.name, m.linkname) for m, _ in read_all(data)] == expected
    assert expected == [("app/a=b/" + "n" * 150, "x=y/" * 40 + "t"), ("app/k=v=w", "")]


def test_a_pax_header_padded_with_nul_bytes_is_read_as_tarfile_reads_it() -> None:
    data = with_pax(record(b"path", b"app/b") + b"\0" * 40)
    assert [m.name for m, _ in read_all(data)] == ["app/b"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        assert tar.getnames() == ["app/b"]


@pytest.mark.parametrize("records", [
    b"0 a=b\n",  # a zero length would never advance (read forever)
    b"x a=b\n",  # the length is no number
    b"9 a=b\n",  # the length runs past the data
    record(b"path", b"app/b") + b"\n",  # a record without a length
    record(b"path", b"app/b") + b"2\n",  # a length without its record
    b"6 abc\n",  # no "="
    record(b"path", b"app/b")[:-1] + b"X",  # not ended by a newline
], ids=["zero", "nan", "short", "bare-newline", "bare-length", "no-equals", "no-newline"])
def test_malformed_pax_records_are_refused(records: bytes) -> None:
    with pytest.raises(tarfile.ReadError) as caught:
        read_all(with_pax(records))
    assert str(caught.value) == "invalid header: malformed pax record"


def test_pax_bytes_that_are_not_utf8_are_kept_not_a_crash() -> None:
    """A hostile pax header with invalid UTF-8 in a key or a value is read (the bytes kept as
    surrogates, as tarfile keeps them), never an exception the extraction does not expect."""
    data = with_pax(record(b"\xffkey", b"v") + record(b"path", b"app/caf\xe9")
                    + record(b"linkpath", b"\xfe"))
    [(member, body)] = read_all(data)
    assert (member.name, member.linkname, body) == ("app/caf\udce9", "\udcfe", b"x")


def _big_archive() -> tuple[bytes, bytes]:
    """A tar of 24 MiB (more decompressed chunks than the reader keeps in flight), compressed."""
    tar = tar_bytes([M("app/zeros", bytes(24 << 20))])
    return tar, zstandard.ZstdCompressor(level=1).compress(tar)


def test_a_consumer_slower_than_the_reading_thread_gets_every_byte() -> None:
    tar, raw = _big_archive()
    reader = ArchiveReader(io.BytesIO(raw))
    chunks = reader.chunks()
    first = next(chunks)
    time.sleep(0.5)  # the thread fills the queue and waits for room meanwhile
    assert first + b"".join(chunks) == tar
    assert reader.finish() == (hashlib.sha256(raw).hexdigest(), len(raw))


def test_stopping_early_stops_the_reading_thread_and_still_hashes_the_file() -> None:
    """A member refused at the start of a large archive: close() returns (the thread waiting
    for room in the queue sees the stop) and the whole file is still hashed."""
    raw = zstandard.ZstdCompressor(level=1).compress(tar_bytes([M("app/noise",
                                                                  os.urandom(24 << 20))]))
    source = io.BytesIO(raw)
    reader = ArchiveReader(source)
    next(reader.chunks())
    time.sleep(0.3)  # the queue is full: the thread waits to put more
    reader.close()
    assert source.tell() < len(raw)  # the rest is not decompressed (a bomb stays unexploded)
    assert reader.rest_digest() == hashlib.sha256(raw).hexdigest()


def test_a_tar_split_across_zstd_frames_is_read_whole() -> None:
    """pzstd and concatenated .zst files hold several frames: the tar goes on in the next."""
    tar = tar_bytes([*MEMBERS, M("app/big", bytes(3 << 20))])
    half = 1 << 20  # a frame ending exactly where one read of the decompressed stream does
    raw = (zstandard.ZstdCompressor().compress(tar[:half])
           + zstandard.ZstdCompressor().compress(tar[half:]))
    reader = ArchiveReader(io.BytesIO(raw))
    assert b"".join(reader.chunks()) == tar


def _one_header(name: bytes = b"app/f") -> bytearray:
    """A ustar member of 3 bytes ("abc") with ``name``, its checksum left to the caller."""
    raw = bytearray(tar_bytes([M("app/f", b"abc")], fmt=tarfile.USTAR_FORMAT))
    raw[0:100] = name.ljust(100, b"\0")
    return raw


@pytest.mark.parametrize("field", [
    lambda unsigned, signed: b"%06o\0 " % signed,  # old tars summed signed bytes
    lambda unsigned, signed: (b"%o\0" % unsigned).ljust(8, b" "),  # no leading zeros, left aligned
    lambda unsigned, signed: b"%07o " % unsigned,  # seven digits ended by a space, no NUL
], ids=["signed", "left-aligned", "no-nul"])
def test_checksums_as_other_tars_write_them_are_accepted(field: object) -> None:
    """Names with bytes above 127 (\\x7f \\x80 \\xe9) make the signed and unsigned sums
    differ; tarfile accepts either, and every spelling of the octal field."""
    raw = _one_header(b"app/\x7f\x80\xe9")
    raw[148:156] = b" " * 8
    unsigned = sum(raw[:512])
    signed = sum(b - 256 if b > 127 else b for b in raw[:512])
    assert unsigned != signed
    raw[148:156] = field(unsigned, signed)  # type: ignore[operator]
    [(member, body)] = read_all(bytes(raw))
    assert (member.name, body) == ("app/\x7f\udc80\udce9", b"abc")
    with tarfile.open(fileobj=io.BytesIO(bytes(raw)), mode="r:") as tar:
        assert len(tar.getmembers()) == 1
    raw[148:156] = b"%06o\0 " % (signed + 1)  # neither sum
    with pytest.raises(tarfile.ReadError, match=r"^bad checksum$"):
        read_all(bytes(raw))


@pytest.mark.parametrize(("size", "message"), [
    (b"\xff\x01" + bytes(9) + b"\x05", "invalid header: negative size"),  # -(2**88 - 2**80 - 5)
    (b"\x80\x01" + bytes(9) + b"\x03", "unexpected end of data"),  # 2**80 + 3, not 3
])
def test_base_256_sizes_are_never_wrapped_to_small_ones(size: bytes, message: str) -> None:
    """A hostile base-256 size is read whole: negative is refused, huge runs past the stream."""
    raw = _one_header()
    raw[124:136] = size
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    with pytest.raises(tarfile.ReadError) as caught:
        read_all(bytes(raw))
    assert str(caught.value) == message


def test_numbers_padded_with_nul_bytes_or_empty_are_read_as_tarfile_reads_them() -> None:
    """``755\\0\\0\\0\\0\\0`` is 0o755; an empty size field is 0 (the next member follows)."""
    raw = _one_header()
    raw[100:108] = b"755".ljust(8, b"\0")
    raw[124:136] = b"3".ljust(12, b"\0")
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    empty = bytearray(tar_bytes([M("app/e", b"")], fmt=tarfile.USTAR_FORMAT)[:512])
    empty[124:136] = bytes(12)
    empty[148:156] = b"%06o\0 " % (sum(empty[:148]) + 256 + sum(empty[156:512]))
    data = bytes(empty) + bytes(raw)
    got = [(m.name, m.mode, m.size, body) for m, body in read_all(data)]
    assert got == [("app/e", 0o644, 0, b""), ("app/f", 0o755, 3, b"abc")]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        assert [(m.name, m.mode, m.size) for m in tar] == [(n, mo, s) for n, mo, s, _ in got]


def test_block_devices_are_reported_as_such() -> None:
    [(member, _)] = read_all(tar_bytes([M("app/sda", type=tarfile.BLKTYPE)]))
    assert member.isblk() and not (member.isreg() or member.ischr() or member.isdir())
    [(member, _)] = read_all(tar_bytes([M("app/f", b"x")]))
    assert not member.isblk()


def test_a_space_ended_mode_and_a_link_target_filling_its_field_are_read_exactly() -> None:
    raw = _one_header()
    raw[100:108] = b"0000700 "  # no NUL: ended by a space
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    [(member, _)] = read_all(bytes(raw))
    assert member.mode == 0o700
    data = tar_bytes([M("app/l", type=tarfile.SYMTYPE, linkname="a" * 100)],
                     fmt=tarfile.USTAR_FORMAT)  # 100 bytes, no NUL, "ustar" right after
    [(member, _)] = read_all(data)
    assert member.linkname == "a" * 100


def test_a_sparse_marker_in_a_global_pax_header_marks_every_member() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"GNU.sparse.major": "1"}) as tar:
        for name in ("app/a", "app/b"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    assert [(m.issparse(), m.isreg()) for m, _ in read_all(buf.getvalue())] == [(True, False)] * 2


def _pax_sized(size: bytes, data: bytes) -> bytes:
    """A member whose pax ``size`` record says ``size``, its ustar size field 0 (as tarfile
    writes members of 8 GiB and more), then a second member."""
    records = record(b"size", size)
    ext = tarfile.TarInfo("././@PaxHeader")
    ext.type, ext.size = tarfile.XHDTYPE, len(records)
    first, second = tarfile.TarInfo("app/a"), tarfile.TarInfo("app/next")
    second.size = 1

    def padded(raw: bytes) -> bytes:
        return raw + b"\0" * (-len(raw) % 512)

    return (ext.tobuf(tarfile.USTAR_FORMAT) + padded(records)
            + first.tobuf(tarfile.USTAR_FORMAT) + padded(data)
            + second.tobuf(tarfile.USTAR_FORMAT) + padded(b"n") + b"\0" * 1024)


@pytest.mark.parametrize("data", [b"abc", b"", b"z" * 513])
def test_the_pax_size_overrides_the_header_size(data: bytes) -> None:
    raw = _pax_sized(b"%d" % len(data), data)
    got = [(m.name, m.size, body) for m, body in read_all(raw, 100)]
    assert got == [("app/a", len(data), data), ("app/next", 1, b"n")]
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        assert [(m.name, m.size) for m in tar] == [(n, s) for n, s, _ in got]


@pytest.mark.parametrize(("size", "message"), [
    (b"abc", "invalid header: pax size"),
    (b"-1", "invalid header: negative size"),
])
def test_a_bad_pax_size_is_refused(size: bytes, message: str) -> None:
    with pytest.raises(tarfile.ReadError) as caught:
        read_all(_pax_sized(size, b""))
    assert str(caught.value) == message


def test_a_name_filling_its_field_is_read_exactly() -> None:
    name = "app/" + "n" * 96  # 100 bytes, no NUL, the mode field right after
    [(member, _)] = read_all(tar_bytes([M(name, b"x")], fmt=tarfile.USTAR_FORMAT))
    assert member.name == name


@pytest.mark.parametrize("type_", [tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE,
                                   tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE])
def test_a_member_without_data_whose_header_claims_a_size_hides_nothing(type_: bytes) -> None:
    """Its "data" is not skipped: what follows is the next member, as tarfile reads it."""
    info = tarfile.TarInfo("app/x")
    info.type, info.linkname, info.size = type_, "t", 600
    nxt = tarfile.TarInfo("app/next")
    nxt.size = 1
    data = (info.tobuf(tarfile.USTAR_FORMAT) + nxt.tobuf(tarfile.USTAR_FORMAT)
            + b"n" + b"\0" * 511 + b"\0" * 1024)
    got = [(m.name, body) for m, body in read_all(data)]
    assert got == [("app/x", b""), ("app/next", b"n")]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        assert tar.getnames() == ["app/x", "app/next"]


@pytest.mark.parametrize("type_", [tarfile.AREGTYPE, tarfile.REGTYPE])
def test_an_old_style_file_named_with_a_slash_is_a_directory(type_: bytes) -> None:
    info = tarfile.TarInfo("app/dX/")  # (a name ending in X: only "/" is stripped)
    info.type = type_
    data = info.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 1024
    [(member, _)] = read_all(data)
    assert (member.name, member.isdir(), member.isreg()) == ("app/dX", True, False)
    [(member, _)] = read_all(tar_bytes([M("app/l/", type=tarfile.SYMTYPE, linkname="t")],
                                       fmt=tarfile.USTAR_FORMAT))
    assert member.issym() and not member.isdir()


@pytest.mark.parametrize("cut", [512 + 600, 512 + 1010])  # inside the data, inside the padding
def test_a_stream_ending_inside_a_member_says_so(cut: int) -> None:
    data = tar_bytes([M("app/a", b"x" * 1000)], fmt=tarfile.USTAR_FORMAT)
    with pytest.raises(tarfile.ReadError) as caught:
        read_all(data[:cut], 64)
    assert str(caught.value) == "unexpected end of data"


def test_after_the_end_nothing_more_is_read() -> None:
    data = tar_bytes([M("app/a", b"1")]) + tar_bytes([M("app/hidden", b"2")])
    stream = TarStream(chunked(data, 512))
    assert stream.next() is not None and stream.next() is None
    assert stream.next() is None and stream.ended  # the member after the end stays unread


def test_an_extended_header_above_the_limit_is_refused() -> None:
    ext = tarfile.TarInfo("././@PaxHeader")
    ext.type, ext.size = tarfile.XHDTYPE, (1 << 20) + 1
    with pytest.raises(tarfile.ReadError) as caught:
        read_all(ext.tobuf(tarfile.USTAR_FORMAT) + bytes(1 << 21))
    assert str(caught.value) == f"invalid header: {(1 << 20) + 1} bytes of extended header"
    padding = b"\0" * ((1 << 20) - len(record(b"path", b"app/b")))
    assert [m.name for m, _ in read_all(with_pax(record(b"path", b"app/b") + padding))] == [
        "app/b"]  # exactly the limit: read


def test_the_checksum_is_the_exact_byte_sum_whatever_the_bytes() -> None:
    """The unsigned sum is taken with zlib's Adler-32 per 256-byte half (no modular wrap):
    random headers, all-0xff ones and each single byte raised agree with ``sum``, and a stored
    value off by one in either direction (or by Adler's modulus 65521) is refused."""
    rng = random.Random(16)
    blocks = [bytes(rng.getrandbits(8) for _ in range(512)) for _ in range(200)]
    blocks += [b"\xff" * 512, bytes(512), b"\x7f" * 256 + b"\xff" * 256]
    blocks += [bytes(512)[:i] + b"\xff" + bytes(511 - i) for i in range(0, 512, 37)]
    for raw in blocks:
        block = bytearray(raw)
        block[148:156] = b" " * 8
        unsigned = sum(block)
        signed = sum(b - 256 if b > 127 else b for b in block)
        for stored, ok in [(unsigned, True), (unsigned - 1, False), (unsigned + 1, False),
                           (unsigned + 65521, False), (unsigned - 65521, False)]:
            if stored < 0:
                continue
            block[148:156] = b"%07o\0" % stored
            assert _checksum_ok(bytes(block)) == (ok or stored == signed), (stored, unsigned)
        if signed >= 0:
            block[148:156] = b"%07o\0" % signed
            assert _checksum_ok(bytes(block))


def test_every_split_of_the_stream_into_two_chunks_reads_the_same() -> None:
    """Whole members buffered (read at once) or cut anywhere: in a header, in the data, in the
    padding or between members, the same members and bytes."""
    data = tar_bytes([M("app/a", b"x" * 700), M("app/link", type=tarfile.SYMTYPE,
                                                 linkname="a"), M("app/b", b"y" * 512),
                      M(LONG, b"z" * 3)])
    def fields(read: list[tuple[Member, bytes]]) -> list[tuple[object, ...]]:
        return [(m.name, m.type, m.size, m.linkname, body) for m, body in read]

    whole = fields(read_all(data))
    assert [w[4] for w in whole] == [b"x" * 700, b"", b"y" * 512, b"z" * 3]
    for cut in range(1, len(data), 7):
        assert fields(read_chunks(iter([data[:cut], data[cut:]]))) == whole, cut
    stream = TarStream(iter([data]))  # a member's data left unread is skipped, as a whole
    names = []
    while (member := stream.next()) is not None:
        names.append(member.name)
    assert names == [w[0] for w in whole]
