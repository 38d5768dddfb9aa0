"""Checked files written in batches by a thread that does not hold the GIL (issue 16.1).

:func:`builder.agent.extract.extract_bundle` checks every member in Python, then hands the file's
name, mode, bytes (views of the decompressed chunks, no copy) and object path to a
:class:`BatchWriter`. Its thread passes batches of them to the C helper
``builder.agent._batchwrite.write_files``, which makes the system calls of the whole batch
(open ``O_EXCL|O_NOFOLLOW``, write, fstat, the object's stamp and link, close) with the interpreter
lock released: the Python thread reads and checks the next members meanwhile, as ``tar`` and its
``zstd`` share two cores. Nothing is decided there; each result comes back to the Python thread
(``on_written``): bytes on disk, inode, and the object link's errno, which the store settles.

Where the helper was not compiled (no C compiler when builder was installed), :data:`NATIVE` is
None and the extraction writes each file itself, as before.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

# write_files(batch) -> [(bytes on disk, inode, errno, link errno), ...]
WriteFiles = Callable[[tuple[Any, ...]], Sequence[tuple[int, int, int, int]]]
NATIVE: WriteFiles | None  # None: not compiled here (builder.agent.extract writes in Python)
try:
    from builder.agent._batchwrite import write_files as NATIVE
except ImportError:
    NATIVE = None

BATCH_FILES = 64
BATCH_BYTES = 8 << 20
IN_FLIGHT = 2  # batches handed to the thread and not yet applied, at most

Row = tuple[bytes, int, tuple[Any, ...], bytes | None]
OnWritten = Callable[[Any, int, int, int], None]  # (key, bytes on disk, inode, link errno)


class BatchWriter:
    """Rows in, results out in the same order, on the caller's thread; the first file that could
    not be written raises its ``OSError`` (from :meth:`add` or :meth:`drain`) and nothing after
    it in its batch was written. :meth:`close` stops the thread (batches not started are
    dropped); call it in a ``finally``."""

    def __init__(self, write_files: WriteFiles, on_written: OnWritten) -> None:
        self._write_files = write_files
        self._on_written = on_written
        self._rows: list[Row] = []
        self._keys: list[tuple[str, Any]] = []  # (path, key) of each row
        self._bytes = 0
        self._sent: deque[list[tuple[str, Any]]] = deque()
        self._jobs: queue.SimpleQueue[tuple[Row, ...] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Sequence[tuple[int, int, int, int]] | BaseException] = \
            queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._jobs.get()) is not None:
            if self._stop.is_set():
                continue
            try:
                self._done.put(self._write_files(batch))
            except BaseException as exc:  # handed to the caller's thread, raised there
                self._done.put(exc)

    def add(self, path: str, mode: int, pieces: tuple[Any, ...], obj: str | None,
            key: Any) -> None:
        """Queue ``path`` (absent; its directory exists) with ``pieces`` as its bytes and, with
        ``obj``, linked as that object (stamped first)."""
        self._rows.append((os.fsencode(path), mode, pieces,
                           None if obj is None else os.fsencode(obj)))
        self._keys.append((path, key))
        self._bytes += sum(len(piece) for piece in pieces)
        if len(self._rows) >= BATCH_FILES or self._bytes >= BATCH_BYTES:
            self._send()
            while len(self._sent) > IN_FLIGHT:
                self._apply()

    def drain(self) -> None:
        """Every row queued so far written and its result applied."""
        self._send()
        while self._sent:
            self._apply()

    def close(self) -> None:
        self._stop.set()
        self._jobs.put(None)
        self._thread.join()

    def _send(self) -> None:
        if self._rows:
            self._jobs.put(tuple(self._rows))
            self._sent.append(self._keys)
            self._rows, self._keys, self._bytes = [], [], 0

    def _apply(self) -> None:
        keys = self._sent.popleft()
        results = self._done.get()
        if isinstance(results, BaseException):
            raise results
        for (path, key), (disk_bytes, inode, error, link_error) in zip(keys, results,
                                                                        strict=False):
            if error:
                raise OSError(error, os.strerror(error), path)
            self._on_written(key, disk_bytes, inode, link_error)
        if len(results) != len(keys):
            raise RuntimeError(f"the batch writer answered {len(results)} of {len(keys)} "
                               "files without an error")
