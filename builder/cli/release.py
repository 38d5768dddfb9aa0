"""Release commands: matrix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    matrix = sub.add_parser("matrix", help="print the recipe x target build matrix as JSON")
    matrix.add_argument("--recipes", type=Path, default=Path("recipes"),
                        help="directory of recipes (default: recipes/)")
    matrix.add_argument("--recipe", action="append", default=[], metavar="NAME",
                        help="only this recipe (repeatable)")
    matrix.add_argument("--target", action="append", default=[], metavar="TRIPLE",
                        help="only this target (repeatable)")
    matrix.set_defaults(handler=_matrix)


def _matrix(args: argparse.Namespace) -> int:
    from builder.release.matrix import build_matrix, matrix_json

    cells = build_matrix(args.recipes, names=tuple(args.recipe), targets=tuple(args.target))
    print(json.dumps(matrix_json(cells), sort_keys=True, separators=(",", ":")))
    return 0
