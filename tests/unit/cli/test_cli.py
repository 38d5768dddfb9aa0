"""The CLI maps every user error to a message and exit code 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import fake_pbs_archive

from builder.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def test_malformed_recipe_lists_every_problem(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    recipe = project / "recipes" / "tiny.toml"
    text = recipe.read_text()
    recipe.write_text(text.replace('name = "tiny"', 'name = "Tiny!"')
                      .replace('python = "3.11"', "python = 311"))
    assert main(["build", "recipes/tiny.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 2 problems found:\n")
    assert "recipes/tiny.toml:5: app.name: 'Tiny!' is not a lowercase name" in err
    assert "recipes/tiny.toml:10: runtime.python: must be a string, not an integer" in err
    assert not (project / "dist").exists()


def test_missing_recipe(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "recipes/nope.toml"]) == 1
    assert "recipes/nope.toml: recipe not found" in capsys.readouterr().err


def test_stale_lock_names_the_refresh_command(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    recipe = project / "recipes" / "tiny.toml"
    recipe.write_text(recipe.read_text().replace("pyjokes==0.8.3", "pyjokes==0.8.2"))
    assert main(["build", "recipes/tiny.toml"]) == 1
    err = capsys.readouterr().err
    assert "the lock is stale" in err
    assert "refresh it with: builder lock recipes/tiny.toml" in err


def test_python_from_with_another_minor_is_refused(project: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    archive = fake_pbs_archive(tmp_path / "src", version="3.12.1")
    assert main(["build", "recipes/tiny.toml", "--python-from", str(archive)]) == 1
    err = capsys.readouterr().err
    assert "--python-from gives CPython 3.12.1, but the lock is for Python 3.11" in err
    assert not (project / "dist").exists()


def test_unknown_target(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "recipes/tiny.toml", "--target", "riscv64-unknown-linux-gnu"]) == 1
    assert "target riscv64-unknown-linux-gnu is not in the recipe" in capsys.readouterr().err


def test_bad_source_date_epoch_is_a_usage_error(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    assert main(["build", "recipes/tiny.toml"]) == 2
    assert "SOURCE_DATE_EPOCH must be a non-negative integer" in capsys.readouterr().err


def test_inspect_of_a_non_bundle(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "junk.tar.zst").write_bytes(b"not zstd")
    assert main(["inspect", "junk.tar.zst"]) == 1
    assert "cannot read bundle" in capsys.readouterr().err


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["schema", "recipe"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("builder recipe")


def test_lock_check_answers_without_resolving(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lock", "recipes/tiny.toml", "--check"]) == 0
    assert "lock is fresh" in capsys.readouterr().err
    recipe = project / "recipes" / "tiny.toml"
    recipe.write_text(recipe.read_text().replace("pyjokes==0.8.3", "pyjokes==0.8.2"))
    assert main(["lock", "recipes/tiny.toml", "--check"]) == 1
    assert "the lock is stale" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["recipe", "manifest", "service-def", "launch", "index"])
def test_every_schema_is_printed(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["schema", kind]) == 0
    assert "$schema" in json.loads(capsys.readouterr().out)
