"""``builder matrix``: every (recipe, target) cell a CI workflow builds, as JSON.

Each cell names the runner label it needs: aarch64 bundles are built on native arm64 runners.
They can be built on x86_64 as well (README "aarch64 on x86_64": build steps, sdist builds and
the recipe's checks run the bundle's aarch64 interpreter through qemu-user and binfmt_misc, and
the tests do exactly that), but a release build on a native runner needs no emulation and is
several times faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, InternalError
from builder.recipe import load_recipe
from builder.recipe.model import KNOWN_TRIPLES

# GitHub-hosted runner labels, by target triple
RUNNERS = {
    "x86_64-unknown-linux-gnu": "ubuntu-24.04",
    "aarch64-unknown-linux-gnu": "ubuntu-24.04-arm",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    recipe: str  # path under the recipes directory as given (relative in CI)
    name: str
    version: str
    target: str
    runner: str

    def to_dict(self) -> dict[str, str]:
        return {"recipe": self.recipe, "name": self.name, "version": self.version,
                "target": self.target, "runner": self.runner}


def build_matrix(recipes_dir: Path, *, names: tuple[str, ...] = (),
                 targets: tuple[str, ...] = ()) -> tuple[Cell, ...]:
    """Cells for every recipe in ``recipes_dir`` (sorted), filtered by name and target."""
    paths = sorted(recipes_dir.glob("*.toml"))
    if not paths:
        raise BuilderError("no recipes (*.toml) found", where=str(recipes_dir),
                           hint="pass --recipes DIR with the recipe files")
    unknown_targets = sorted(set(targets) - set(KNOWN_TRIPLES))
    if unknown_targets:
        raise BuilderError(f"unknown target {', '.join(unknown_targets)}",
                           hint=f"known targets: {', '.join(KNOWN_TRIPLES)}")
    cells: list[Cell] = []
    seen: set[str] = set()
    for path in paths:
        recipe = load_recipe(path)
        seen.add(recipe.name)
        if names and recipe.name not in names:
            continue
        for triple in recipe.targets.triples:
            if targets and triple not in targets:
                continue
            runner = RUNNERS.get(triple)
            if runner is None:
                raise InternalError(f"no CI runner label for target {triple}")
            cells.append(Cell(recipe=path.as_posix(), name=recipe.name, version=recipe.version,
                              target=triple, runner=runner))
    missing = sorted(set(names) - seen)
    if missing:
        raise BuilderError(f"no recipe named {', '.join(missing)}", where=str(recipes_dir),
                           hint=f"recipes here: {', '.join(sorted(seen))}")
    return tuple(cells)


def matrix_json(cells: tuple[Cell, ...]) -> dict[str, Any]:
    """The shape GitHub Actions expects for ``strategy.matrix``: ``{"include": [...]}``."""
    return {"include": [cell.to_dict() for cell in cells]}
