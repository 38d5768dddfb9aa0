"""The one root exception, and the few structured errors every stage shares.

Messages are built from fields (what, where, what to do) so the CLI can print them as they are
and tests can compare them exactly.
"""

from __future__ import annotations

import errno
import platform
import sys
from collections.abc import Iterable
from dataclasses import dataclass


class BuilderError(Exception):
    """Everything builder raises on purpose derives from this; the CLI maps it to exit code 1."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.message


class UsageError(BuilderError):
    """Bad command line (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One located problem found while validating an input file."""

    path: str  # file path as given by the user
    line: int | None
    key: str  # dotted key path, e.g. "packages.requirements[2]"
    message: str

    def render(self) -> str:
        loc = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{loc}: {self.key}: {self.message}" if self.key else f"{loc}: {self.message}"


class ValidationError(BuilderError):
    """Several problems in one input, reported at once."""

    def __init__(self, problems: Iterable[Problem], *, hint: str | None = None) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        body = "\n".join(p.render() for p in self.problems)
        super().__init__(f"{head}:\n{body}", hint=hint)


class HashMismatchError(BuilderError):
    """A pinned input does not have the bytes its pin promises."""

    def __init__(self, *, what: str, where: str, expected: str, actual: str, hint: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"sha256 mismatch for {what}\n  expected: {expected}\n  actual:   {actual}",
            where=where,
            hint=hint,
        )


class InternalError(BuilderError):
    """A broken invariant inside builder itself: a bug, not the user's input."""

    def __init__(self, what: str) -> None:
        from builder import __version__

        super().__init__(
            f"internal error: {what}",
            hint=(
                "this is a bug in builder, please report it with this message "
                f"(builder {__version__}, Python {sys.version.split()[0]}, {platform.platform()})"
            ),
        )


def production_assert(condition: bool, what: str) -> None:
    """Check an internal invariant; never use for user input."""
    if not condition:
        raise InternalError(what)


_OS_HINTS = {
    errno.ENOSPC: "free some space on that file system (or choose another location: --out, "
                  "BUILDER_CACHE_DIR) and run the command again",
    errno.EDQUOT: "free some space within your quota and run the command again",
    errno.EACCES: "make it writable (or readable) for this user, or choose another location",
    errno.EPERM: "make it writable (or readable) for this user, or choose another location",
    errno.EROFS: "the file system is mounted read-only: choose another location",
    errno.ENOTDIR: "a file is where a directory is expected: move it away or choose another "
                   "location",
    errno.EEXIST: "something is in the way: move it away or choose another location",
    errno.EISDIR: "a directory is where a file is expected: move it away or choose another "
                  "location",
    errno.ENOTEMPTY: "a directory is in the way: move it away or choose another location",
}


def environment_error(exc: OSError) -> BuilderError:
    """An ``OSError`` that escaped every stage (the file system refused something) as one
    message: what (the system's words), where (the path), what to do (by errno)."""
    where = exc.filename if isinstance(exc.filename, str) else None
    if where is not None and isinstance(exc.filename2, str):
        where = f"{where} -> {exc.filename2}"
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(exc.errno or 0, "check the path and its permissions, then run the "
                                         "command again")
    return BuilderError(what, where=where, hint=hint)
