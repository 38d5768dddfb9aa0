from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from builder.errors import BuilderError
from builder.fsutil import CHUNK
from builder.relocate.record import (
    parse_record,
    record_hash,
    record_hash_file,
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
        ("../../../../..", None),  # exactly the parent of the app root
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


def test_a_blank_line_does_not_end_the_record() -> None:
    rows = parse_record("a,sha256=x,1\n\nb,sha256=y,2\n", where="RECORD")
    assert [row[0] for row in rows] == ["a", "b"]


def test_rows_outside_the_app_and_the_record_itself_are_never_touched() -> None:
    rows = (("/abs/x.pyc", "sha256=x", "1"), ("hello-1.0.dist-info/RECORD", "", ""))
    assert rows_touched(RECORD, rows, removed=set(), rewritten={RECORD}) == ((), ())
    assert rows_touched(RECORD, rows, removed={RECORD}, rewritten=set()) == ((), ())


def test_a_file_larger_than_one_chunk_is_hashed_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * ((2 * CHUNK) // 256) + b"tail"
    (tmp_path / "big").write_bytes(data)
    assert record_hash_file(str(tmp_path / "big")) == (record_hash(data), len(data))
