from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import BuilderError
from builder.release.matrix import RUNNERS, build_matrix, matrix_json

ROOT = Path(__file__).resolve().parents[3]


def test_every_shipped_recipe_and_target_is_a_cell() -> None:
    cells = build_matrix(ROOT / "recipes")
    names = {p.stem for p in (ROOT / "recipes").glob("*.toml")}
    assert {c.name for c in cells} == names
    for cell in cells:
        assert cell.runner == RUNNERS[cell.target]
        assert Path(cell.recipe).name == f"{cell.name}.toml"
    arm = [c for c in cells if c.target.startswith("aarch64")]
    assert arm and all(c.runner.endswith("-arm") for c in arm)
    assert ("jupyter-6", "x86_64-unknown-linux-gnu") in {(c.name, c.target) for c in cells}


def test_filters(tmp_path: Path) -> None:
    cells = build_matrix(ROOT / "recipes", names=("tiny",),
                         targets=("aarch64-unknown-linux-gnu",))
    assert [(c.name, c.target, c.runner) for c in cells] == [
        ("tiny", "aarch64-unknown-linux-gnu", "ubuntu-24.04-arm")]
    with pytest.raises(BuilderError, match="no recipe named nope"):
        build_matrix(ROOT / "recipes", names=("nope",))
    with pytest.raises(BuilderError, match="unknown target sparc"):
        build_matrix(ROOT / "recipes", targets=("sparc",))
    with pytest.raises(BuilderError, match="no recipes"):
        build_matrix(tmp_path)


def test_cli_prints_github_matrix_json(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["matrix", "--recipe", "tiny"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == matrix_json(build_matrix(Path("recipes"), names=("tiny",)))
    assert {cell["recipe"] for cell in data["include"]} == {"recipes/tiny.toml"}


def test_the_readme_names_the_runner_release_ci_builds_aarch64_on() -> None:
    """README's "aarch64 on x86_64" and the matrix agree on where aarch64 is built."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## aarch64 on x86_64", 1)[1].split("\n## ", 1)[0]
    assert f"`{RUNNERS['aarch64-unknown-linux-gnu']}`" in section
    assert "runs-on: ${{ matrix.runner }}" in (ROOT / "ci" / "release.yml").read_text()
