"""`builder push` and `builder export --oci` on the command line (no network)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from oci_fakes import make_bundle

from builder.cli.main import main


def test_export_prints_layout_and_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "tiny.tar.zst")
    assert main(["export", str(bundle), "--oci", str(tmp_path / "layout"), "--tag", "t1"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'layout'}:t1\n"
    assert err.startswith("image sha256:")
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "t1"}


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["push", "{bundle}", "tiny:1.0"], 2, "error: tiny:1.0: the registry is missing\n"
     "  hint: write it as REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/apps/tiny:1.0\n"),
    (["push", "{bundle}", "127.0.0.1:5000/tiny"], 2,
     "error: 127.0.0.1:5000/tiny: a tag is needed to push (REGISTRY/REPO:TAG)\n"),
    (["push", "{bundle}", "127.0.0.1:5000/tiny:1", "--username", "u"], 2,
     "error: --username and --password-stdin go together\n"),
    (["push", "{missing}", "127.0.0.1:5000/tiny:1"], 1, "error: {missing}: no such bundle\n"),
    (["export", "{bundle}", "--oci", "{bundle}"], 1,
     "error: {bundle}: exists and is not an OCI image layout\n"),
])
def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                message: str) -> None:
    names = {"bundle": str(make_bundle(tmp_path / "tiny.tar.zst")),
             "missing": str(tmp_path / "missing.tar.zst")}
    assert main([a.format(**names) for a in argv]) == code
    assert capsys.readouterr().err.startswith(message.format(**names))


def test_password_stdin_must_not_be_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    bundle = make_bundle(tmp_path / "tiny.tar.zst")
    assert main(["push", str(bundle), "127.0.0.1:5000/tiny:1", "--username", "u",
                 "--password-stdin"]) == 2
    assert "standard input had no password" in capsys.readouterr().err
