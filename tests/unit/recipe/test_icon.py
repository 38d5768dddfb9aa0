"""A recipe's icon: a real 128x128 PNG (signature, IHDR with its CRC, IEND), refused clearly
otherwise, by the reader and by `builder build` before any work."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import BuilderError
from builder.recipe import parse_recipe_text
from builder.recipe.icon import check_icon, load_icon, png_size

ROOT = Path(__file__).resolve().parents[3]


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int = 128, height: int = 128) -> bytes:
    """A grey PNG of ``width`` x ``height``, made with zlib and struct."""
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_a_128_pixel_png_is_the_icon() -> None:
    data = png()
    assert png_size(data) == (128, 128)
    icon = check_icon(data, where="r.toml: app.ui.icon")
    assert base64.b64decode(icon.base64) == data and len(icon.sha256) == 64


def test_the_recipes_icons_are_128_pixel_pngs() -> None:
    for name in ("jupyter", "jupyterlab", "tensorboard", "vscode"):
        data = (ROOT / "recipes" / "icons" / f"{name}.png").read_bytes()
        assert png_size(data) == (128, 128) and len(data) < 1024


@pytest.mark.parametrize(("data", "message"), [
    (png(64, 64), "the icon is 64x64 pixels, not 128x128"),
    (png(128, 96), "the icon is 128x96 pixels, not 128x128"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "it is not a PNG file (no PNG signature)"),
    (b"\x89PNG\r\n\x1a\n" + chunk(b"IDAT", b"x" * 20), "the first chunk is not IHDR"),
    (png()[:30], "truncated PNG file (no IHDR chunk)"),
    (png()[:-12], "it does not end with IEND"),
    (png()[:29] + b"\x00" + png()[30:], "IHDR checksum mismatch"),
    (png()[:-12] + b"\x00" * (70 << 10) + png()[-12:], "more than 65536"),
])
def test_what_is_not_a_128_pixel_png_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(BuilderError) as caught:
        check_icon(data, where="r.toml: app.ui.icon")
    assert message in str(caught.value), str(caught.value)
    assert caught.value.where == "r.toml: app.ui.icon"
    assert "128x128 PNG" in (caught.value.hint or "")


def recipe_with_icon(tmp_path: Path, icon: str) -> Path:
    text = (ROOT / "recipes/tiny.toml").read_text() + f'\n[app.ui]\nicon = "{icon}"\n'
    path = tmp_path / "recipes" / "tiny.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_icon_path_is_relative_to_the_recipe(tmp_path: Path) -> None:
    path = recipe_with_icon(tmp_path, "icons/tiny.png")
    (tmp_path / "recipes/icons").mkdir()
    (tmp_path / "recipes/icons/tiny.png").write_bytes(png())
    icon = load_icon(parse_recipe_text(path.read_text(), path=str(path)))
    assert icon is not None and icon.data == png()


@pytest.mark.parametrize("icon", ["/abs/icon.png", "icon.svg", "jupyter"])
def test_an_icon_that_is_not_a_relative_png_path_is_refused_by_the_parser(icon: str) -> None:
    text = (ROOT / "recipes/tiny.toml").read_text() + f'\n[app.ui]\nicon = "{icon}"\n'
    with pytest.raises(BuilderError, match="is not a PNG file's path relative to the recipe"):
        parse_recipe_text(text, path="r.toml")


def test_build_refuses_a_bad_icon_before_any_work(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = recipe_with_icon(tmp_path, "icon.png")
    assert main(["build", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{path}: app.ui.icon: cannot read the icon 'icon.png'" in err
    (path.parent / "icon.png").write_bytes(png(256, 256))
    assert main(["build", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{path}: app.ui.icon: the icon is 256x256 pixels, not 128x128" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
