"""Bundles with a mountable image, as ``builder build --image squashfs`` writes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from agent_factories import Fabricated, canonical

from builder.bundle.image import ImageInfo, ImageKind, image_path, write_image

MTIME = 315532800


def need_mksquashfs() -> None:
    if shutil.which("mksquashfs") is None:
        pytest.skip("mksquashfs not installed (Debian: apt-get install squashfs-tools)")


def add_image(bundle: Fabricated, work: Path) -> ImageInfo:
    """The bundle's squashfs image beside its archive, listed in its sidecar."""
    need_mksquashfs()
    work.mkdir(parents=True)
    dest = image_path(bundle.archive, ImageKind.SQUASHFS)
    info = write_image(bundle.archive, dest, kind=ImageKind.SQUASHFS, mtime=MTIME, work=work)
    shutil.rmtree(work)
    list_image(bundle, info.to_dict())
    return info


def list_image(bundle: Fabricated, image: dict[str, object]) -> None:
    """Rewrite the sidecar's ``image`` object (hostile tests lie in it)."""
    sidecar = json.loads(bundle.sidecar.read_text())
    sidecar["image"] = image
    bundle.sidecar.write_bytes(canonical(sidecar))
