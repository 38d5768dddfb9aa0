"""Python-shebang scripts: recognise them, and render relocatable sh/python trampolines.

A trampoline is a file that ``/bin/sh`` runs as a two-line shell script and Python runs as a
module whose first statement is a string::

    #!/bin/sh
    '''exec' "$(dirname -- "$(readlink -f -- "$0")")/python3.11" "$0" "$@"
    ' '''
    <the original python body>

The shell resolves the script's real directory (``readlink -f`` follows symlinks to the script),
so the bundle runs from any directory, through symlinks and under paths with spaces.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from builder.errors import InternalError

_PYTHON_NAME = re.compile(r"^python(?:\d+(?:\.\d+)*)?[dmu]*$")
_SIMPLE_FLAG = re.compile(r"^-[A-Za-z]+$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._+/-]+$")
_POLYGLOT_EXEC = b"'''exec' "
_POLYGLOT_END = b"' '''"

# Scripts the interpreter itself ships (pip's, pydoc, python3.X-config, python3.X-gdb.py, ...):
# converted like every script, not exposed by default.
INTERPRETER_SCRIPTS = ("2to3*", "idle*", "pip*", "pydoc*", "python*")


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonScript:
    """A script whose shebang names a python, split into what to keep and what to replace."""

    shebang: str  # the interpreter part as found (for reports), e.g. "/tmp/x/python3"
    flags: tuple[str, ...]  # simple interpreter options to keep, e.g. ("-s",)
    body: bytes  # everything after the shebang (or after the old polyglot header)


def _is_python(command: str) -> bool:
    return bool(_PYTHON_NAME.match(posixpath.basename(command)))


def _split_line(data: bytes) -> tuple[bytes, bytes]:
    """(first line without its end, the rest after the newline)."""
    line, newline, rest = data.partition(b"\n")
    return line.rstrip(b"\r"), rest if newline else b""


def _parse_polyglot(rest: bytes) -> PythonScript | None:
    """The installer/distlib/PBS ``#!/bin/sh`` + ``'''exec'`` header (also our own)."""
    exec_line, after = _split_line(rest)
    end_line, body = _split_line(after)
    if not exec_line.startswith(_POLYGLOT_EXEC) or end_line != _POLYGLOT_END:
        return None
    command = exec_line[len(_POLYGLOT_EXEC) :].decode("utf-8", "surrogateescape")
    if "python" not in command:
        return None
    named = command
    if "$(" not in command:  # a quoted path as installer/distlib write it: show it plainly
        with contextlib.suppress(ValueError, IndexError):
            named = shlex.split(command)[0]
    return PythonScript(shebang=named, flags=(), body=body)


def parse_python_script(data: bytes) -> PythonScript | None:
    """The script's parts if its shebang names a python (directly, via env, or polyglot)."""
    if not data.startswith(b"#!"):
        return None
    first, rest = _split_line(data)
    text = first[2:].decode("utf-8", "surrogateescape").strip()
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if not words:
        return None
    if posixpath.basename(words[0]) == "sh" and len(words) == 1:
        return _parse_polyglot(rest)
    command, args = words[0], words[1:]
    if posixpath.basename(command) == "env":
        args = [a for a in args if not a.startswith("-") and "=" not in a]
        if not args:
            return None
        command, args = args[0], []
    if not _is_python(command):
        return None
    flags = tuple(a for a in args if _SIMPLE_FLAG.match(a))
    return PythonScript(shebang=text, flags=flags, body=rest)


def _interpreter_expression(script: PurePosixPath, interpreter: PurePosixPath) -> str:
    """Shell words naming ``interpreter`` relative to the real directory of ``script``."""
    relative = posixpath.relpath(str(interpreter), str(script.parent))
    parts = relative.split("/")
    ups = 0
    while parts and parts[0] == "..":
        ups += 1
        parts.pop(0)
    rest = "/".join(parts)
    if not rest or not _SAFE_PATH.match(rest):
        raise InternalError(f"cannot express interpreter path {relative!r} in a trampoline")
    expression = '"$(readlink -f -- "$0")"'
    for _ in range(ups + 1):
        expression = f'"$(dirname -- {expression})"'
    return f'{expression[:-1]}/{rest}"'


def render_trampoline(
    *, script: PurePosixPath, interpreter: PurePosixPath, flags: tuple[str, ...], body: bytes
) -> bytes:
    """The full text of a trampoline at ``script`` (both paths relative to the app root)."""
    words = [_interpreter_expression(script, interpreter), *flags, '"$0"', '"$@"']
    header = "#!/bin/sh\n'''exec' " + " ".join(words) + "\n' '''\n"
    return header.encode("ascii") + body


def future_import_problem(body: bytes) -> bool:
    """True if the body has a docstring followed by ``from __future__`` imports.

    Behind the trampoline's string statement, such a module no longer compiles.
    """
    try:
        module = ast.parse(body)
    except (SyntaxError, ValueError):
        return False
    docstring = (
        bool(module.body)
        and isinstance(module.body[0], ast.Expr)
        and isinstance(module.body[0].value, ast.Constant)
        and isinstance(module.body[0].value.value, str)
    )
    return docstring and any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in module.body
    )


def is_interpreter_script(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in INTERPRETER_SCRIPTS)
