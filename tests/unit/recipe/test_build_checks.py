"""The recipe's source-distribution policy, ``[build]`` steps and ``[checks]``."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest
import tomlkit
from factories import demo_recipe

from builder.errors import ValidationError
from builder.recipe import lock_digest, parse_recipe_text, recipe_digest, recipe_to_dict

SERVICE = '\n[service]\ncommand = ["bin/x", "--port", "{port}"]\n'


def recipe(packages: str = "", tail: str = ""):  # type: ignore[no-untyped-def]
    return parse_recipe_text(demo_recipe(packages=packages, tail=tail), path="r.toml")


def problems(packages: str = "", tail: str = "") -> list[str]:
    with pytest.raises(ValidationError) as info:
        recipe(packages, tail)
    return [p.render() for p in info.value.problems]


def schema_accepts(packages: str = "", tail: str = "") -> bool:
    schema = json.loads(files("builder.recipe").joinpath("recipe.schema.json").read_text())
    try:
        jsonschema.validate(tomlkit.parse(demo_recipe(packages=packages, tail=tail)).unwrap(),
                            schema)
    except jsonschema.ValidationError:
        return False
    return True


def test_defaults_allow_no_sdists_run_no_steps_and_check_everything() -> None:
    r = recipe()
    assert r.packages.allow_sdists is False
    assert not r.packages.sdist_allowed("pyjokes")
    assert r.build.steps == ()
    assert r.checks.imports and r.checks.service and r.checks.timeout == 120
    assert r.checks.commands == () and r.checks.import_skip == ()


def test_allow_sdists_true_allows_every_project() -> None:
    r = recipe("allow_sdists = true\n")
    assert r.packages.sdist_allowed("anything")


def test_allow_sdists_names_are_canonical_and_sorted() -> None:
    r = recipe('allow_sdists = ["Jupyter_Contrib_NBExtensions", "a.b"]\n')
    assert r.packages.allow_sdists == ("a-b", "jupyter-contrib-nbextensions")
    assert r.packages.sdist_allowed("jupyter-contrib-nbextensions")
    assert not r.packages.sdist_allowed("notebook")
    assert schema_accepts('allow_sdists = ["Jupyter_Contrib_NBExtensions", "a.b"]\n')


@pytest.mark.parametrize(
    ("packages", "expected"),
    [
        ('allow_sdists = "yes"\n',
         "r.toml:13: packages.allow_sdists: must be true, false or an array of project names, "
         "not a string"),
        ("allow_sdists = []\n", "r.toml:13: packages.allow_sdists: must not be empty"),
        ('allow_sdists = ["ok", "not a name"]\n',
         "r.toml:13: packages.allow_sdists[1]: 'not a name' is not a project name"),
        ('allow_sdists = ["a_b", "A-B"]\n', "r.toml:13: packages.allow_sdists: lists a "
         "project twice"),
    ],
)
def test_bad_allow_sdists(packages: str, expected: str) -> None:
    assert problems(packages) == [expected]
    assert not schema_accepts(packages) or "twice" in expected  # a-b/A-B differ as strings


def test_build_steps_are_argv_lists_in_order() -> None:
    tail = '\n[build]\nsteps = [["jupyter", "contrib", "nbextension", "install"], ["bin/x"]]\n'
    r = recipe(tail=tail)
    assert r.build.steps == (("jupyter", "contrib", "nbextension", "install"), ("bin/x",))
    assert schema_accepts(tail=tail)


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ('\n[build]\nsteps = "make"\n',
         "r.toml:18: build.steps: must be an array of commands (arrays of strings), not a string"),
        ('\n[build]\nsteps = [[]]\n', "r.toml:18: build.steps[0]: must be a non-empty array of "
         "strings"),
        ('\n[build]\nsteps = ["make"]\n', "r.toml:18: build.steps[0]: must be a non-empty array "
         "of strings"),
        ('\n[build]\nsteps = [["x", 1]]\n', "r.toml:18: build.steps[0][1]: must be a string, "
         "not an integer"),
        ('\n[build]\nsteps = [["/usr/bin/make"]]\n', "r.toml:18: build.steps[0][0]: "
         "'/usr/bin/make' is not a command on the bundle's PATH or a path inside the app"),
        ('\n[build]\nsteps = [["../x"]]\n', "r.toml:18: build.steps[0][0]: '../x' is not "
         "a command"),
        ('\n[build]\nsteps = [["x"]]\nshell = true\n', "r.toml:19: build.shell: unknown key"),
        ('\n[checks]\ncommands = [[" "]]\n', "r.toml:18: checks.commands[0][0]: ' ' is "
         "not a command"),
        ('\n[checks]\nimports = "yes"\n', "r.toml:18: checks.imports: must be a boolean"),
        ('\n[checks]\nimport_skip = ["a-b"]\n', "r.toml:18: checks.import_skip[0]: 'a-b' is "
         "not a module name"),
        ('\n[checks]\ntimeout = 0\n', "r.toml:18: checks.timeout: 0 is not between 1 and 3600"),
        ('\n[checks]\ntimeout = 3601\n', "r.toml:18: checks.timeout: 3601 is not between"),
        ('\n[checks]\ntimeout = true\n', "r.toml:18: checks.timeout: must be an integer"),
        ('\n[checks]\nservice = true\n', "r.toml:18: checks.service: the recipe has no "
         "[service] to check"),
    ],
)
def test_bad_build_and_checks_are_located(tail: str, expected: str) -> None:
    found = problems(tail=tail)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


def test_checks_table() -> None:
    tail = SERVICE + ('\n[checks]\nimports = false\nimport_skip = ["b", "a.c", "b"]\n'
                      'commands = [["bin/x", "--version"]]\nservice = false\ntimeout = 30\n')
    r = recipe(tail=tail)
    assert not r.checks.imports and not r.checks.service
    assert r.checks.import_skip == ("a.c", "b")
    assert r.checks.commands == (("bin/x", "--version"),)
    assert r.checks.timeout == 30


def test_steps_and_checks_change_the_bundle_not_the_lock() -> None:
    plain, stepped = recipe(), recipe(tail='\n[build]\nsteps = [["x"]]\n')
    assert lock_digest(plain) == lock_digest(stepped)
    assert recipe_digest(plain) != recipe_digest(stepped)
    checked = recipe(tail="\n[checks]\ntimeout = 5\n")
    assert recipe_digest(plain) != recipe_digest(checked)
    assert recipe_to_dict(stepped)["build"] == {"steps": [["x"]]}


def test_allowing_sdists_stales_the_lock() -> None:
    assert lock_digest(recipe()) != lock_digest(recipe('allow_sdists = ["x"]\n'))
    assert lock_digest(recipe('allow_sdists = ["x"]\n')) != lock_digest(
        recipe("allow_sdists = true\n"))
