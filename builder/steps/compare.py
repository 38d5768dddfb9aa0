"""Did two runs of a step write the same thing? Compare what each run changed, in two trees.

The second tree lives at another path, so a step that writes its own location is not
"non-reproducible" here: the second tree's root is replaced by the first one's before bytes
and link targets are compared. (Whether that location may stay in the file at all is
relocation's question: its scan for the staging path fails the build and names the step.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SHOWN = 60  # characters of a differing line shown
SHOWN_BYTES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    path: str  # relative to the app root
    detail: str  # how the second run's result differs from the first's


def root_forms(root: Path) -> tuple[bytes, ...]:
    """The spellings of a tree's root a program may write: as given and fully resolved."""
    forms = {os.fsencode(root), os.fsencode(os.path.realpath(root))}
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


def compare_runs(paths: Iterable[str], first: Path, second: Path) -> tuple[Difference, ...]:
    """Every path (changed by either run) whose state differs between the two trees."""
    mine = os.fsencode(first)
    theirs = root_forms(second)
    differences = []
    for path in sorted(set(paths)):
        detail = _differs(first / path, second / path, mine=mine, theirs=theirs)
        if detail is not None:
            differences.append(Difference(path=path, detail=detail))
    return tuple(differences)


def _kind(st: os.stat_result | None) -> str:
    if st is None:
        return "nothing"
    if stat.S_ISDIR(st.st_mode):
        return "a directory"
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if stat.S_ISREG(st.st_mode):
        return "a file"
    return "a special file"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _differs(a: Path, b: Path, *, mine: bytes, theirs: tuple[bytes, ...]) -> str | None:
    sa, sb = _lstat(a), _lstat(b)
    if _kind(sa) != _kind(sb):
        return f"{_kind(sa)} in the first run, {_kind(sb)} in the second"
    if sa is None or sb is None:
        return None
    if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode) and not stat.S_ISLNK(sa.st_mode):
        return (f"mode {stat.S_IMODE(sa.st_mode):04o} in the first run, "
                f"{stat.S_IMODE(sb.st_mode):04o} in the second")
    if stat.S_ISLNK(sa.st_mode):
        ta = os.fsencode(a.readlink())
        tb = _replace(os.fsencode(b.readlink()), theirs, mine)
        return None if ta == tb else (f"links to {os.fsdecode(ta)!r} in the first run, "
                                      f"{os.fsdecode(tb)!r} in the second")
    return _content(a, b, mine=mine, theirs=theirs) if stat.S_ISREG(sa.st_mode) else None


def _content(a: Path, b: Path, *, mine: bytes, theirs: tuple[bytes, ...]) -> str | None:
    da = a.read_bytes()
    db = _replace(b.read_bytes(), theirs, mine)
    return None if da == db else first_difference(da, db)


def _replace(data: bytes, old: tuple[bytes, ...], new: bytes) -> bytes:
    for form in old:
        data = data.replace(form, new)
    return data


def first_difference(a: bytes, b: bytes) -> str:
    """Where two byte strings first differ: a line for text, an offset and bytes otherwise."""
    sizes = f"{len(a)} bytes vs {len(b)}" if len(a) != len(b) else f"{len(a)} bytes each"
    if b"\0" not in a and b"\0" not in b:
        try:
            la, lb = a.decode().splitlines(), b.decode().splitlines()
        except UnicodeDecodeError:
            pass
        else:
            for number, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
                if x != y:
                    column, x_shown, y_shown = _around(x, y)
                    return (f"line {number}, column {column}: {x_shown!r} vs {y_shown!r} "
                            f"({sizes})")
            number = min(len(la), len(lb)) + 1
            if len(la) != len(lb):
                extra = la[number - 1] if len(la) > len(lb) else lb[number - 1]
                which = "first" if len(la) > len(lb) else "second"
                return f"line {number} only in the {which} run: {_cut(extra)!r} ({sizes})"
    offset = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                  min(len(a), len(b)))
    end = offset + SHOWN_BYTES
    return (f"byte {offset}: {a[offset:end].hex(' ') or '(end)'} vs "
            f"{b[offset:end].hex(' ') or '(end)'} ({sizes})")


def _cut(line: str) -> str:
    return line if len(line) <= SHOWN else line[: SHOWN - 3] + "..."


def _around(x: str, y: str) -> tuple[int, str, str]:
    """The first differing column (1-based) of two lines and both lines shown from a little
    before it (a minified JSON file is one long line)."""
    column = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q),
                  min(len(x), len(y)))
    start = max(0, column - SHOWN // 3)
    lead = "..." if start else ""
    return column + 1, _cut(lead + x[start:]), _cut(lead + y[start:])
