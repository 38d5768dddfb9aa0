"""SimPhoNy-remote's metadata, end to end: a recipe's icon (a fabricated 128x128 PNG) and UI
table built into a real bundle (recipes/tiny.toml with an ``[app.ui]``), listed by ``builder
index`` and pushed with ``builder push`` to a loopback registry; skopeo reads the image's labels
back as SimPhoNy's ``remoteappmanager`` reads them (``eu.simphony-project.docker.*``)."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from builder_run import ROOT, run_builder

pytestmark = pytest.mark.integration

NS = "eu.simphony-project.docker"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(size: int = 128) -> bytes:
    """An RGB PNG with a diagonal gradient, made with zlib and struct."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 2, y * 2, 128)) for x in range(size))
                    for y in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


UI = """
[app.ui]
name = "Tiny Jokes"
icon = "art/tiny.png"
kind = "webapp"
accepted_env = ["JOKE_LANGUAGE", "X11_WIDTH"]
"""


@pytest.fixture(scope="module")
def registry(docker_registry: str) -> str:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed (Debian: apt-get install -y skopeo)")
    return docker_registry


def test_icon_and_ui_reach_the_catalog_and_simphonys_image_labels(
        registry: str, builder_cache: Path, runtime_archive: Path, tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    (recipes / "art").mkdir(parents=True)
    icon = png()
    (recipes / "art" / "tiny.png").write_bytes(icon)
    recipe = recipes / "tiny.toml"
    recipe.write_text((ROOT / "recipes" / "tiny.toml").read_text() + UI)
    out = tmp_path / "dist"
    built = run_builder("build", str(recipe), "--python-from", str(runtime_archive), "--out",
                        str(out), "--lock-dir", str(ROOT / "lockfiles" / "tiny"),
                        cache=builder_cache)
    assert built.returncode == 0, built.stderr
    bundle = Path(built.stdout.strip())

    # the file itself in the bundle, its base64 in the manifest
    listed = subprocess.run(["tar", "--zstd", "-xOf", str(bundle), "app/share/icon-128.png"],
                            capture_output=True, check=True)
    assert listed.stdout == icon
    manifest = json.loads(subprocess.run(["tar", "--zstd", "-xOf", str(bundle), "manifest.json"],
                                         capture_output=True, check=True).stdout)
    assert manifest["ui"]["icon"] == "app/share/icon-128.png"
    assert base64.b64decode(manifest["ui"]["icon_128"]) == icon

    indexed = run_builder("index", str(out), cache=builder_cache)
    assert indexed.returncode == 0, indexed.stderr
    entry = json.loads((out / "index.json").read_text())["bundles"][0]
    assert base64.b64decode(entry["ui"]["icon_128"]) == icon

    pushed = run_builder("push", str(bundle), f"{registry}/apps/tiny:ui", "--plain-http",
                         cache=builder_cache)
    assert pushed.returncode == 0, pushed.stderr
    inspect = subprocess.run(["skopeo", "inspect", "--tls-verify=false",
                              f"docker://{registry}/apps/tiny:ui"],
                             capture_output=True, text=True, check=False, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    labels = json.loads(inspect.stdout)["Labels"]
    simphony = {k[len(NS) + 1:]: v for k, v in labels.items() if k.startswith(NS + ".")}
    assert simphony == {
        "ui_name": "Tiny Jokes",
        "icon_128": base64.b64encode(icon).decode(),
        "description": "A console script from one small pure-Python wheel",
        "type": "webapp",
        "env.joke-language": "", "env.x11-width": ""}
    # as remoteappmanager.docker.image.Image reads env labels back: dashes to underscores,
    # upper-cased, giving the recipe's accepted variables
    assert sorted(k[4:].upper().replace("-", "_") for k in simphony if k.startswith("env.")) \
        == ["JOKE_LANGUAGE", "X11_WIDTH"]
