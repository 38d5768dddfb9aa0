from __future__ import annotations

from pathlib import Path, PurePosixPath

from builder.fsutil import CHUNK
from builder.relocate import ScanHit, leftover_error, scan_for_paths

NEEDLE = "/tmp/builder-stage-abc"


def test_scan_finds_needles_in_text_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text(f"prefix={NEEDLE}/app\n")
    (tmp_path / "b.pyc").write_bytes(b"\x00\xff" + NEEDLE.encode() + b"\x00")
    (tmp_path / "clean.txt").write_text("nothing here\n")
    (tmp_path / "both").write_text(f"{NEEDLE} /private{NEEDLE}x")
    hits = scan_for_paths(tmp_path, (NEEDLE, f"/private{NEEDLE}", ""))
    assert hits == (
        ScanHit(path=PurePosixPath("b.pyc"), needle=NEEDLE),
        ScanHit(path=PurePosixPath("both"), needle=f"/private{NEEDLE}"),
        ScanHit(path=PurePosixPath("both"), needle=NEEDLE),
        ScanHit(path=PurePosixPath("sub/a.txt"), needle=NEEDLE),
    )


def test_needle_across_a_chunk_boundary_is_found(tmp_path: Path) -> None:
    data = b"x" * (CHUNK - 5) + NEEDLE.encode() + b"y" * 10
    (tmp_path / "big").write_bytes(data)
    assert scan_for_paths(tmp_path, (NEEDLE,)) == (
        ScanHit(path=PurePosixPath("big"), needle=NEEDLE),
    )


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text(NEEDLE)
    root = tmp_path / "root"
    root.mkdir()
    (root / "link-file").symlink_to(outside / "f")
    (root / "link-dir").symlink_to(outside)
    (root / f"named{NEEDLE.replace('/', '_')}").symlink_to(NEEDLE)
    assert scan_for_paths(root, (NEEDLE,)) == ()


def test_no_needles_no_hits(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert scan_for_paths(tmp_path, ()) == ()


def test_leftover_error_lists_at_most_twenty_files() -> None:
    hits = tuple(
        ScanHit(path=PurePosixPath(f"f{i:02d}"), needle=n) for i in range(25) for n in ("/a", "/b")
    )
    error = leftover_error(Path("/s/app"), hits)
    listed = "".join(f"\n  f{i:02d}" for i in range(20))
    assert error.what == (
        f"25 files still contain the staging path (/a, /b) after relocation:{listed}\n"
        "  ... and 5 more"
    )
    assert error.where == "/s/app"


def test_a_needle_with_all_but_its_last_byte_before_a_chunk_boundary_is_found(
        tmp_path: Path) -> None:
    """The overlap between chunks is exactly long enough: len(needle) - 1 bytes."""
    needle = NEEDLE.encode()
    (tmp_path / "big").write_bytes(b"x" * (CHUNK - len(needle) + 1) + needle)
    assert scan_for_paths(tmp_path, (NEEDLE,)) == (
        ScanHit(path=PurePosixPath("big"), needle=NEEDLE),
    )


def test_files_after_a_skipped_symlink_are_still_scanned(tmp_path: Path) -> None:
    (tmp_path / "a-link").symlink_to(tmp_path / "nowhere")
    (tmp_path / "b.txt").write_text(NEEDLE)
    assert scan_for_paths(tmp_path, (NEEDLE,)) == (
        ScanHit(path=PurePosixPath("b.txt"), needle=NEEDLE),
    )
