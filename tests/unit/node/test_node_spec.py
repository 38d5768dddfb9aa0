"""The [node] settings as data (the recipe's [node] table is tested in tests/unit/recipe)."""

from __future__ import annotations

import pytest

from builder.errors import BuilderError
from builder.recipe.node import NodeAppSpec


def test_every_bad_setting_is_reported_at_once() -> None:
    with pytest.raises(BuilderError) as err:
        NodeAppSpec(package="Code Server", version="^4.0.0", nested=("../up",),
                    drop=("/abs",))
    assert err.value.what == (
        "bad [node] settings: bad npm package name 'Code Server'; version '^4.0.0' must be "
        "exact (x.y.z), not a range; path '../up' must stay inside the install root; "
        "path '/abs' must stay inside the install root"
    )


def test_scoped_names_and_prerelease_versions_are_fine() -> None:
    spec = NodeAppSpec(package="@scope/app", version="1.2.0-beta.15")
    assert spec.main_dir == "node_modules/@scope/app"
