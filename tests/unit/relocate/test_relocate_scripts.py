from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from builder.relocate.scripts import (
    future_import_problem,
    is_interpreter_script,
    parse_python_script,
    render_trampoline,
)

BODY = b"import sys\nprint(sys.argv)\n"
P = PurePosixPath


@pytest.mark.parametrize(
    ("data", "shebang", "flags"),
    [
        (b"#!/tmp/s/app/python/bin/python3\n" + BODY, "/tmp/s/app/python/bin/python3", ()),
        (b"#!/tmp/s/app/python/bin/python3.11\r\n" + BODY, "/tmp/s/app/python/bin/python3.11", ()),
        (b"#!/usr/bin/env python3\n" + BODY, "/usr/bin/env python3", ()),
        (b"#!/usr/bin/env -S python\n" + BODY, "/usr/bin/env -S python", ()),
        (b"#!python\n" + BODY, "python", ()),
        (b"#!/usr/bin/python3 -sE\n" + BODY, "/usr/bin/python3 -sE", ("-sE",)),
        (
            b"#!/bin/sh\n'''exec' '/tmp/a b/app/python/bin/python3' \"$0\" \"$@\"\n' '''\n" + BODY,
            "/tmp/a b/app/python/bin/python3",
            (),
        ),
        (  # python-build-standalone's own relocatable form
            b"#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/'python3.11' "
            b"\"$0\" \"$@\"\n' '''\n" + BODY,
            '"$(dirname -- "$(realpath -- "$0")")"/\'python3.11\' "$0" "$@"',
            (),
        ),
    ],
)
def test_python_scripts_are_recognised(data: bytes, shebang: str, flags: tuple[str, ...]) -> None:
    parsed = parse_python_script(data)
    assert parsed is not None
    assert (parsed.shebang, parsed.flags, parsed.body) == (shebang, flags, BODY)


@pytest.mark.parametrize(
    "data",
    [
        b"#!/bin/sh\necho hi\n",
        b"#!/bin/sh\n'''exec' /usr/bin/perl \"$0\"\n' '''\n",
        b"#!/usr/bin/perl\nprint 1;\n",
        b"#!/usr/bin/env bash\n",
        b"#!/usr/bin/env\n",
        b"#!\n",
        b"import sys\n",
        b"\x7fELF\x02\x01",
        b"",
        b"#!/opt/python-tools/bin/perl\n",
    ],
)
def test_other_files_are_not_python_scripts(data: bytes) -> None:
    assert parse_python_script(data) is None


def test_trampoline_golden_in_python_bin() -> None:
    text = render_trampoline(
        script=P("python/bin/hello"), interpreter=P("python/bin/python3.11"), flags=(), body=BODY
    )
    assert text == (
        b"#!/bin/sh\n"
        b'\'\'\'exec\' "$(dirname -- "$(readlink -f -- "$0")")/python3.11" "$0" "$@"\n'
        b"' '''\n" + BODY
    )


def test_trampoline_golden_in_app_bin() -> None:
    text = render_trampoline(
        script=P("bin/hello"), interpreter=P("python/bin/python3.11"), flags=("-s",), body=BODY
    )
    assert text == (
        b"#!/bin/sh\n"
        b'\'\'\'exec\' "$(dirname -- "$(dirname -- "$(readlink -f -- "$0")")")'
        b'/python/bin/python3.11" -s "$0" "$@"\n'
        b"' '''\n" + BODY
    )


def test_trampoline_is_valid_python_and_reparses_to_the_same_body() -> None:
    text = render_trampoline(
        script=P("bin/x"), interpreter=P("python/bin/python3.11"), flags=(), body=BODY
    )
    compile(text, "x", "exec")
    parsed = parse_python_script(text)
    assert parsed is not None
    assert parsed.body == BODY


def test_future_import_after_docstring_is_detected() -> None:
    assert future_import_problem(b'"""doc"""\nfrom __future__ import annotations\n')
    assert not future_import_problem(b"from __future__ import annotations\n")
    assert not future_import_problem(b'"""doc"""\nimport os\n')
    assert not future_import_problem(b"print 'py2'\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pip", True),
        ("pip3.11", True),
        ("pydoc3", True),
        ("2to3-3.11", True),
        ("idle3", True),
        ("python3.11-config", True),
        ("jupyter", False),
        ("hello", False),
        ("python3.11-gdb.py", True),
        ("pythonista", True),
    ],
)
def test_interpreter_scripts(name: str, expected: bool) -> None:
    assert is_interpreter_script(name) is expected
