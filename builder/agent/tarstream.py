"""A small, strict, streaming tar reader for the agent's extraction (ustar, pax, GNU names).

:mod:`tarfile` spends most of an install's CPU time parsing headers and wrapping every member's
data in file objects; this reader parses the 512-byte blocks itself from a stream of decompressed
chunks and hands out each member's data as the chunks it arrives in. It only *reads*: every
decision about what a member may be stays in :mod:`builder.agent.extract`, which sees members with
the few attributes and predicates of :class:`tarfile.TarInfo` it uses.

Refused as corrupt (``tarfile.ReadError``): a bad header checksum, a malformed number, a pax
record that does not parse, a name or link header without its member, and a stream that ends
inside a header or a member's data. The stream ends at the first all-zero block (or, as tarfile
accepts, exactly at a block boundary). GNU sparse members (type ``S`` or ``GNU.sparse.*`` pax
keys) are reported as sparse, never expanded.

:func:`archive_chunks` reads the compressed archive in a second thread: read, sha256 and zstd
decompression (which release the GIL) overlap with the parsing and writing in the caller's.
"""

from __future__ import annotations

import hashlib
import queue
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast
from zlib import adler32

import zstandard

BLOCK = 512
_READ = 1 << 20
_QUEUE = 16  # chunks of _READ decompressed bytes in flight at most
_TYPE_REG = (b"0", b"\0", b"7")  # regular, old regular, contiguous (tarfile: regular too)
_META_TYPES = (b"x", b"g", b"X", b"L", b"K")
_MAX_META = 1 << 20  # a pax or GNU name header larger than this is refused
_ZERO_BLOCK = bytes(BLOCK)
_SPACES = b" " * 8


@dataclass(slots=True, kw_only=True)
class Member:
    """One member's header, as much as the extraction needs (``tarfile.TarInfo``'s names)."""

    name: str
    type: bytes
    mode: int
    size: int
    linkname: str
    sparse: bool

    def isreg(self) -> bool:
        return self.type in _TYPE_REG and not self.sparse

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def issparse(self) -> bool:
        return self.sparse

    def ischr(self) -> bool:
        return self.type == b"3"

    def isblk(self) -> bool:
        return self.type == b"4"

    def isfifo(self) -> bool:
        return self.type == b"6"


def _corrupt(what: str) -> tarfile.ReadError:
    return tarfile.ReadError(what)


def _number(field: bytes) -> int:
    """An octal (or GNU base-256) numeric header field."""
    if field and field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * (len(field) - 1))) if field[0] == 0o377 else value
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _corrupt(f"invalid header: bad number {field!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156])
    # the unsigned sum of the block's bytes, the checksum field counted as 8 spaces. zlib's
    # Adler-32 of each 256-byte half is 1 + that half's byte sum in its low 16 bits: at most
    # 1 + 256 * 255 = 65281, below the modulus 65521, so never reduced (~10x faster than sum())
    spaced = block[:148] + _SPACES + block[156:]
    unsigned = (adler32(spaced[:256]) & 0xFFFF) + (adler32(spaced[256:]) & 0xFFFF) - 2
    if stored == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 256
    return stored == signed


def _pax_records(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else -1
        except ValueError:
            length = -1
        if length <= 0 or pos + length > len(data) or data[pos + length - 1] != 0x0A:
            raise _corrupt("invalid header: malformed pax record")
        key, sep, value = data[space + 1:pos + length - 1].partition(b"=")
        if not sep:
            raise _corrupt("invalid header: malformed pax record")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarStream:
    """Members of the tar read from ``chunks`` (an iterator of byte strings, any sizes)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._view = memoryview(self._buf)  # of _buf: data handed out without a copy
        self._pos = 0
        self._left = 0  # data (and padding) of the current member not yet consumed
        self._pad = 0
        self._globals: dict[str, str] = {}
        self._started = False
        self.ended = False

    def _fill(self, need: int) -> bool:
        """At least ``need`` bytes buffered; False when the stream ends first."""
        while len(self._buf) - self._pos < need:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buf = self._buf[self._pos:] + chunk
            self._view = memoryview(self._buf)
            self._pos = 0
        return True

    def _take(self, size: int) -> bytes:
        if not self._fill(size):
            raise _corrupt("unexpected end of data")
        data = self._buf[self._pos:self._pos + size]
        self._pos += size
        return data

    def data(self) -> Iterator[memoryview]:
        """The current member's data, as it arrives (consumed as yielded; a member already
        buffered whole, as most are, is consumed at once): views of the chunks read, not
        copies of them."""
        end = self._pos + self._left
        if self._left and end + self._pad <= len(self._buf):
            piece = self._view[self._pos:end]
            self._pos = end + self._pad
            self._left = self._pad = 0
            return iter((piece,))
        return self._arriving()

    def _arriving(self) -> Iterator[memoryview]:
        while self._left > 0:
            if self._pos >= len(self._buf):
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise _corrupt("unexpected end of data")
                self._buf, self._view, self._pos = chunk, memoryview(chunk), 0
            end = min(len(self._buf), self._pos + self._left)
            piece = self._view[self._pos:end]
            self._left -= end - self._pos
            self._pos = end
            yield piece
        if self._pad:
            self._take(self._pad)
            self._pad = 0

    def read_all(self) -> bytes:
        return b"".join(self.data())

    def _skip(self) -> None:
        if self._left or self._pad:
            for _ in self.data():
                pass

    def next(self) -> Member | None:
        """The next member (the previous one's unread data skipped); None at the end."""
        if self.ended:
            return None
        self._skip()
        local: dict[str, str] = {}
        longs: dict[bytes, str] = {}  # GNU long name (L) and long link (K)
        while True:
            if not self._fill(BLOCK):
                if len(self._buf) - self._pos:
                    raise _corrupt("truncated header")
                if not self._started:
                    raise _corrupt("empty file")
                self.ended = True
                return None
            self._started = True
            block = self._take(BLOCK)
            if block == _ZERO_BLOCK:
                self.ended = True
                return None
            if not _checksum_ok(block):
                raise _corrupt("bad checksum")
            type_ = block[156:157]
            size = _number(block[124:136])
            if size < 0:
                raise _corrupt("invalid header: negative size")
            self._left, self._pad = size, -size % BLOCK
            if type_ not in _META_TYPES:
                break
            if size > _MAX_META:
                raise _corrupt(f"invalid header: {size} bytes of extended header")
            meta = self.read_all()
            if type_ in (b"L", b"K"):
                longs[type_] = _text(meta)
            else:
                (self._globals if type_ == b"g" else local).update(_pax_records(meta))
        return self._member(block, type_, size, local, longs)

    def _member(self, block: bytes, type_: bytes, size: int, local: dict[str, str],
                longs: dict[bytes, str]) -> Member:
        pax = {**self._globals, **local} if self._globals else local
        name = _text(block[0:100])
        if block[345] and block[257:263] == b"ustar\x00" and (prefix := _text(block[345:500])):
            name = f"{prefix}/{name}"
        linkname = _text(block[157:257]) if block[157] else ""
        if longs:
            name = longs.get(b"L", name)
            linkname = longs.get(b"K", linkname)
        sparse = type_ == b"S"
        if pax:
            name = pax.get("path", name)
            linkname = pax.get("linkpath", linkname)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise _corrupt("invalid header: pax size") from None
                if size < 0:
                    raise _corrupt("invalid header: negative size")
                self._left, self._pad = size, -size % BLOCK
            sparse = sparse or any(k.startswith("GNU.sparse.") for k in pax)
        if type_ in (b"\0", b"0") and name.endswith("/"):
            type_ = b"5"
        if type_ == b"5":
            name = name.rstrip("/")
        if type_ in (b"1", b"2", b"3", b"4", b"5", b"6"):  # no data, whatever the size says
            self._left = self._pad = 0
        return Member(name=name, type=type_, mode=_number(block[100:108]) & 0o7777, size=size,
                      linkname=linkname, sparse=sparse)


class ArchiveReader:
    """Reads a ``.tar.zst`` file in a thread: sha256 and size of the compressed bytes, chunks of
    the decompressed stream. :meth:`chunks` yields them; :meth:`finish` waits for the end of the
    file (read whole, whatever the tar inside says) and returns (sha256 hex, bytes read)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUE)
        self._stop = threading.Event()
        self._digest = hashlib.sha256()
        self._count = 0
        self._done = False
        self._rest: str | None = None
        self._thread = threading.Thread(target=self._run, name="archive-reader", daemon=True)
        self._thread.start()

    def read(self, size: int = -1) -> bytes:  # the decompressor's source
        data = self._raw.read(size)
        self._digest.update(data)
        self._count += len(data)
        return data

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(
                cast(BinaryIO, self), closefd=False, read_across_frames=True)
            with reader:
                while chunk := reader.read(_READ):
                    if not self._put(chunk):
                        return
            while self.read(_READ):  # whatever follows the last frame is hashed too
                pass
            self._put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def chunks(self) -> Iterator[bytes]:
        while not self._done:
            item = self._queue.get()
            if item is None:
                self._done = True
                return
            if isinstance(item, BaseException):
                self._done = True
                raise item
            yield item

    def finish(self) -> tuple[str, int]:
        """Consume the rest of the stream; the archive's sha256 and size."""
        for _ in self.chunks():
            pass
        self._thread.join()
        return self._digest.hexdigest(), self._count

    def close(self) -> None:
        """Stop the thread (on an error: nothing more is decompressed)."""
        self._stop.set()
        self._thread.join()

    def rest_digest(self) -> str:
        """After :meth:`close`: the sha256 of the whole file (the unread rest hashed here)."""
        if self._rest is None:
            while self.read(_READ):
                pass
            self._rest = self._digest.hexdigest()
        return self._rest
