from __future__ import annotations

from pathlib import Path

import pytest
from factories import make_lock

from builder.errors import BuilderError
from builder.lock.codec import read_lock, requirements_text, write_lock
from builder.locking.api import default_lock_dir, load_fresh_lock, refresh_command
from builder.recipe import lock_digest, parse_recipe_text

ROOT = Path(__file__).resolve().parents[3]
RECIPE_TEXT = (ROOT / "recipes" / "tiny.toml").read_text()


def test_requirements_file_is_pip_tools_style() -> None:
    lock = make_lock("sha256:x")
    text = requirements_text(lock, lock.targets[1], refresh_command="builder lock recipes/t.toml")
    assert text.endswith(
        "pyjokes==0.8.3 \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via -r recipe\n"
        "zz==1 \\\n"
        f"    --hash=sha256:{'c' * 64}\n"
        "    # via\n"
        "    #   a\n"
        "    #   pyjokes\n"
    )
    assert "# To refresh it, run: builder lock recipes/t.toml" in text


def test_round_trip_is_byte_stable(tmp_path: Path) -> None:
    lock = make_lock("sha256:x")
    write_lock(lock, tmp_path, refresh_command="builder lock r")
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert read_lock(tmp_path, refresh_command="builder lock r") == lock
    write_lock(read_lock(tmp_path, refresh_command="x"), tmp_path, refresh_command="builder lock r")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    assert first["lock.json"].endswith(b"}\n")


def test_hand_edited_requirements_file_is_caught(tmp_path: Path) -> None:
    write_lock(make_lock("sha256:x"), tmp_path, refresh_command="builder lock r")
    txt = tmp_path / "x86_64-unknown-linux-gnu.txt"
    txt.write_text(txt.read_text().replace("0.8.3", "0.8.2"))
    with pytest.raises(BuilderError, match=r"does not match lock.json \(edited by hand\?\)"):
        read_lock(tmp_path, refresh_command="builder lock r")


def test_missing_lock_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(BuilderError) as info:
        read_lock(tmp_path, refresh_command="builder lock recipes/tiny.toml")
    assert "no lock found" in str(info.value)
    assert "create it with: builder lock recipes/tiny.toml" in str(info.value)


def test_stale_lock_is_refused_with_the_refresh_command(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    path = recipes / "tiny.toml"
    path.write_text(RECIPE_TEXT)
    recipe = parse_recipe_text(RECIPE_TEXT, path=str(path))
    lock_dir = default_lock_dir(path, recipe.name)
    assert lock_dir == tmp_path / "lockfiles" / "tiny"
    assert refresh_command(recipe) == "builder lock recipes/tiny.toml"
    write_lock(make_lock(lock_digest(recipe)), lock_dir, refresh_command="x")
    assert load_fresh_lock(recipe, lock_dir=lock_dir).recipe_name == "tiny"
    changed = parse_recipe_text(RECIPE_TEXT.replace("0.8.3", "0.8.2"), path=str(path))
    with pytest.raises(BuilderError) as info:
        load_fresh_lock(changed, lock_dir=lock_dir)
    assert "the lock is stale" in str(info.value)
    assert "refresh it with: builder lock recipes/tiny.toml" in str(info.value)


@pytest.mark.parametrize("name", ["jupyter-6", "tiny"])
def test_committed_locks_are_fresh(name: str) -> None:
    path = ROOT / "recipes" / f"{name}.toml"
    recipe = parse_recipe_text(path.read_text(), path=str(path))
    lock = load_fresh_lock(recipe, lock_dir=ROOT / "lockfiles" / name)
    assert {t.target for t in lock.targets} == set(recipe.targets.triples)
    for target in lock.targets:
        assert target.interpreter.python_version.startswith("3.11.")
        assert len(target.interpreter.sha256) == 64
        assert all(len(p.sha256) == 64 for p in target.packages)
    if name == "jupyter-6":
        x86 = lock.for_target("x86_64-unknown-linux-gnu")
        assert x86 is not None
        assert ("notebook", "6.5.7") in {(p.name, p.version) for p in x86.packages}
        arm = lock.for_target("aarch64-unknown-linux-gnu")
        assert arm is not None
        assert all("x86_64" not in p.filename for p in arm.packages)
        assert any("aarch64" in p.filename for p in arm.packages)
