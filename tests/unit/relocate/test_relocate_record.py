from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from builder.errors import BuilderError
from builder.relocate.record import (
    parse_record,
    record_hash,
    render_record,
    rewrite_rows,
    row_target,
    rows_touched,
)

P = PurePosixPath
RECORD = P("python/lib/python3.11/site-packages/hello-1.0.dist-info/RECORD")
TEXT = (
    "../../../bin/hello,sha256=old,10\n"
    "hello-1.0.dist-info/RECORD,,\n"
    "hello-1.0.dist-info/REQUESTED,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"
    "hello/__init__.py,sha256=abc,3\n"
    "hello/__pycache__/__init__.cpython-311.pyc,sha256=def,9\n"
    '"odd,name.py",sha256=ghi,1\n'
)


def test_record_hash_is_urlsafe_base64_without_padding() -> None:
    assert record_hash(b"") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_parse_render_round_trip() -> None:
    rows = parse_record(TEXT, where="RECORD")
    assert rows[-1] == ("odd,name.py", "sha256=ghi", "1")
    assert render_record(rows) == TEXT


def test_malformed_row_is_located() -> None:
    with pytest.raises(BuilderError) as info:
        parse_record("a,b,c\nonly-two,x\n", where="x/RECORD")
    assert str(info.value) == "x/RECORD: line 2: expected 3 fields, found 2"


@pytest.mark.parametrize(
    ("row", "target"),
    [
        ("../../../bin/hello", "python/bin/hello"),
        ("hello/__init__.py", "python/lib/python3.11/site-packages/hello/__init__.py"),
        ("/abs/path", None),
        ("../../../../../../escape", None),
    ],
)
def test_row_targets(row: str, target: str | None) -> None:
    found = row_target(RECORD, row)
    assert (str(found) if found else None) == target


def test_rows_touched() -> None:
    rows = parse_record(TEXT, where="RECORD")
    drop, rehash = rows_touched(
        RECORD,
        rows,
        removed={P("python/lib/python3.11/site-packages/hello-1.0.dist-info/REQUESTED")},
        rewritten={P("python/bin/hello")},
    )
    assert drop == ("hello-1.0.dist-info/REQUESTED",)
    assert rehash == ("../../../bin/hello", "hello/__pycache__/__init__.cpython-311.pyc")


def test_rewrite_rows() -> None:
    rows = parse_record(TEXT, where="RECORD")
    digests = {P("python/bin/hello"): ("sha256=new", 42)}
    out = rewrite_rows(
        RECORD,
        rows,
        drop={"hello-1.0.dist-info/REQUESTED"},
        rehash={"../../../bin/hello", "hello/__pycache__/__init__.cpython-311.pyc"},
        digest=digests.get,
    )
    assert render_record(out) == (
        "../../../bin/hello,sha256=new,42\n"
        "hello-1.0.dist-info/RECORD,,\n"
        "hello/__init__.py,sha256=abc,3\n"
        '"odd,name.py",sha256=ghi,1\n'
    )
