"""ELF files of another architecture: dropped under exempt patterns, refused elsewhere."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from agent_factories import manifest_dict
from elf_bytes import write_elf

from builder.bundle.describe import describe_tree, drop_foreign
from builder.bundle.image import ImageInfo, ImageKind
from builder.errors import BuilderError

SITE = "python/lib/python3.11/site-packages"
EXEMPT = (f"{SITE}/debugpy/attach/*",)


def _bundle(tmp_path: Path) -> Path:
    app = tmp_path / "bundle/app"
    write_elf(app / SITE / "debugpy/attach/attach_linux_amd64.so", "x86_64")
    write_elf(app / SITE / "debugpy/attach/attach_linux_arm64.so", "aarch64")
    write_elf(app / SITE / "pkg/_native.so", "aarch64")
    return tmp_path / "bundle"


def test_foreign_exempt_files_are_dropped_and_listed(tmp_path: Path) -> None:
    root = _bundle(tmp_path)
    dropped = drop_foreign(root, arch="aarch64", exempt=EXEMPT)
    assert dropped == ((f"app/{SITE}/debugpy/attach/attach_linux_amd64.so", "x86_64"),)
    assert not (root / dropped[0][0]).exists()
    assert (root / "app" / SITE / "debugpy/attach/attach_linux_arm64.so").is_file()
    facts = describe_tree(root, arch="aarch64", site_packages=root / "app" / SITE, exempt=EXEMPT)
    assert facts.file_count == 2


def test_nothing_dropped_for_the_native_arch_of_every_file(tmp_path: Path) -> None:
    root = _bundle(tmp_path)
    (root / "app" / SITE / "debugpy/attach/attach_linux_amd64.so").unlink()
    assert drop_foreign(root, arch="aarch64", exempt=EXEMPT) == ()


def test_foreign_files_outside_exempt_patterns_still_fail(tmp_path: Path) -> None:
    root = _bundle(tmp_path)
    assert drop_foreign(root, arch="aarch64", exempt=()) == ()
    with pytest.raises(BuilderError, match=r"1 ELF file\(s\) are not built for aarch64"):
        describe_tree(root, arch="aarch64", site_packages=root / "app" / SITE, exempt=())


def test_the_manifest_lists_dropped_files_only_when_there_are_some() -> None:
    schema = json.loads(files("builder.bundle").joinpath("manifest.schema.json").read_text())
    plain = manifest_dict()
    assert "dropped" not in plain
    jsonschema.validate(plain, schema)
    dropped = manifest_dict(dropped=[{"file": "app/x.so", "arch": "x86_64"}])
    jsonschema.validate(dropped, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest_dict(dropped=[{"file": "app/x.so"}]), schema)


def test_the_sidecar_of_an_imaged_bundle_agrees_with_the_schema() -> None:
    """`build --image` adds ``image`` (ImageInfo.to_dict) to the sidecar; the published schema
    must accept what builder writes, and still refuse a malformed entry."""
    schema = json.loads(files("builder.bundle").joinpath("manifest.schema.json").read_text())
    info = ImageInfo(kind=ImageKind.SQUASHFS, filename="demo-1.0-x.squashfs", sha256="a" * 64,
                     size=4096, tool="mksquashfs 4.5.1")
    sidecar = {**manifest_dict(), "archive": {"filename": "demo-1.0-x.tar.zst",
                                              "sha256": "b" * 64, "size": 10},
               "image": info.to_dict()}
    jsonschema.validate(sidecar, schema)
    for broken in ({**info.to_dict(), "kind": "erofs"}, {**info.to_dict(), "size": 0},
                   {k: v for k, v in info.to_dict().items() if k != "tool"},
                   {**info.to_dict(), "filename": "../x.squashfs"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**sidecar, "image": broken}, schema)
