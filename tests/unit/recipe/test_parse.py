from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import tomlkit

from builder.errors import BuilderError, ValidationError
from builder.recipe import load_recipe, lock_digest, parse_recipe_text, recipe_digest
from builder.recipe.model import Protocol, Service, ServiceKind, Ui, UiKind
from builder.recipe.parse import MAX_ITEMS, MAX_STRING, MAX_SUMMARY

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
format_version = 1

[app]
name = "demo"
version = "1.0"

[runtime]
python = "3.11"
pbs_release = "20240107"

[packages]
requirements = [
    "pyjokes==0.8.3",
    "six",
]

[targets]
triples = ["x86_64-unknown-linux-gnu"]
"""


def schema() -> dict[str, object]:
    return json.loads(files("builder.recipe").joinpath("recipe.schema.json").read_text())


def test_minimal_recipe_gets_defaults() -> None:
    recipe = parse_recipe_text(GOOD, path="demo.toml")
    assert recipe.name == "demo"
    assert recipe.final_root == "/opt/apps/demo"
    assert recipe.packages.requirements == ("pyjokes==0.8.3", "six")
    assert recipe.packages.index_url == "https://pypi.org/simple"
    assert recipe.packages.expose is None
    assert recipe.runtime.flavor == "install_only"
    assert recipe.targets.glibc_floor == "2.17"
    assert recipe.ui.name == "demo" and recipe.ui.kind is UiKind.WEBAPP
    assert recipe.service is None


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "recipes").glob("*.toml")))
def test_shipped_recipes_parse_and_match_the_schema(name: str) -> None:
    path = ROOT / "recipes" / name
    recipe = parse_recipe_text(path.read_text(), path=str(path))
    jsonschema.validate(tomlkit.parse(path.read_text()).unwrap(), schema())
    assert "x86_64-unknown-linux-gnu" in recipe.targets.triples


def test_jupyter_recipe_pins_notebook_6() -> None:
    recipe = parse_recipe_text((ROOT / "recipes/jupyter-6.toml").read_text(), path="j.toml")
    assert recipe.packages.requirements[0] == "notebook==6.5.7"
    assert "jupyter_contrib_nbextensions==0.7.0" in recipe.packages.requirements
    assert recipe.packages.sdist_allowed("jupyter-contrib-nbextensions")
    assert not recipe.packages.sdist_allowed("notebook")
    assert recipe.build.steps[0][:3] == ("jupyter", "contrib", "nbextension")
    assert recipe.runtime.python == "3.11"
    assert recipe.service is not None and recipe.service.protocol is Protocol.HTTP


def _problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_recipe_text(text, path="r.toml")
    return [p.render() for p in info.value.problems]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('name = "demo"', 'name = "Demo App"',
         "r.toml:4: app.name: 'Demo App' is not a lowercase name of [a-z0-9._-] (it becomes "
         "/opt/apps/<name>)"),
        ('python = "3.11"', "python = 3.11", "r.toml:8: runtime.python: must be a string, "
         "not a float"),
        ('pbs_release = "20240107"', 'pbs_release = "latest"',
         "r.toml:9: runtime.pbs_release: 'latest' is not a python-build-standalone release tag "
         'like "20240107"'),
        ('    "six",', '    "six>>1",',
         "r.toml:14: packages.requirements[1]: not a valid PEP 508 requirement: "),
        ('    "six",', '    "six @ https://example.invalid/six.whl",',
         "r.toml:14: packages.requirements[1]: direct URL requirements cannot be locked by hash "
         "from an index; name a version"),
        ('triples = ["x86_64-unknown-linux-gnu"]', 'triples = ["riscv64-unknown-linux-gnu"]',
         "r.toml:18: targets.triples[0]: 'riscv64-unknown-linux-gnu' is not one of: "
         "aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu"),
        ("[targets]", '[targets]\nglibc_floor = "2.5"',
         "r.toml:18: targets.glibc_floor: '2.5' is not 2.17 or later (the floor of "
         "python-build-standalone)"),
        ('version = "1.0"', 'version = "1.0"\ncolour = "red"',
         "r.toml:6: app.colour: unknown key (allowed: name, version, summary, ui)"),
        ("format_version = 1", "format_version = 2",
         "r.toml:1: format_version: 2 is not a format_version this builder reads (it reads 1)"),
    ],
)
def test_each_problem_is_located(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    problems = _problems(GOOD.replace(old, new))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = (
        GOOD.replace('name = "demo"', 'name = ""')
        .replace('"six",', '"six>>1", 3,')
        .replace("[targets]\n", "[targets]\nglibc_floor = 2\n")
        + "\n[extras]\nx = 1\n"
    )
    problems = _problems(text)
    assert problems == [
        "r.toml:4: app.name: '' is not a lowercase name of [a-z0-9._-] (it becomes "
        "/opt/apps/<name>)",
        "r.toml:14: packages.requirements[1]: not a valid PEP 508 requirement: "
        + problems[1].split("requirement: ", 1)[1],
        "r.toml:14: packages.requirements[2]: must be a string, not an integer",
        "r.toml:18: targets.glibc_floor: must be a string, not an integer",
        "r.toml:21: extras: unknown key (allowed: format_version, app, runtime, packages, "
        "targets, service, kernels, node, build, checks)",
    ]


def test_missing_tables_are_named() -> None:
    problems = _problems("format_version = 1\n")
    assert problems == [
        "r.toml: app: missing table [app]",
        "r.toml: runtime: missing table [runtime]",
        "r.toml: packages: missing table [packages]",
        "r.toml: targets: missing table [targets]",
    ]


def test_toml_syntax_error_has_a_line() -> None:
    problems = _problems(GOOD.replace('version = "1.0"', "version = 1.0.0"))
    assert len(problems) == 1
    assert problems[0].startswith("r.toml:5: TOML syntax error")


def test_service_section() -> None:
    text = GOOD + (
        '\n[service]\ncommand = ["bin/app", "--port={port}"]\nport = 70000\n'
        'env = { A_B = "1", "bad-name" = "x" }\n'
    )
    problems = _problems(text)
    assert problems == [
        "r.toml:22: service.port: 70000 is not a TCP port",
        "r.toml:23: service.env.bad-name: 'bad-name' is not an environment variable name",
    ]


def test_digests_ignore_comments_and_service_changes_do_not_stale_the_lock() -> None:
    base = parse_recipe_text(GOOD, path="a.toml")
    commented = parse_recipe_text("# a comment\n" + GOOD, path="b.toml")
    assert lock_digest(base) == lock_digest(commented)
    assert recipe_digest(base) == recipe_digest(commented)
    with_service = parse_recipe_text(GOOD + '\n[service]\ncommand = ["x"]\n', path="c.toml")
    assert lock_digest(with_service) == lock_digest(base)
    assert recipe_digest(with_service) != recipe_digest(base)
    bumped = parse_recipe_text(GOOD.replace("0.8.3", "0.8.2"), path="d.toml")
    assert lock_digest(bumped) != lock_digest(base)


def test_kernels_python3_names_which_python_notebooks_get() -> None:
    jupyter = GOOD + '\n[service]\ncommand = ["bin/jupyter-notebook"]\nkind = "jupyter"\n'
    default = parse_recipe_text(jupyter + "\n[kernels]\n", path="a.toml")
    assert default.kernels is not None and default.kernels.python3 == "image"
    text = jupyter + '\n[kernels]\npython3 = "bundle"\n'
    bundle = parse_recipe_text(text, path="b.toml")
    assert bundle.kernels is not None and bundle.kernels.python3 == "bundle"
    jsonschema.validate(tomlkit.parse(text).unwrap(), schema())
    assert lock_digest(bundle) == lock_digest(default), "a launch choice, not a lock input"
    assert recipe_digest(bundle) != recipe_digest(default)
    assert _problems(jupyter + '\n[kernels]\npython3 = "system"\n') == [
        "r.toml:25: kernels.python3: 'system' is not one of: image, bundle"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[targets]\n", '[targets]\nglibc_exempt = "x"\n',
         ["r.toml:18: targets.glibc_exempt: must be an array of strings, not a string"]),
        ("[packages]\n", '[packages]\nexpose = "x"\n',
         ["r.toml:12: packages.expose: must be an array of strings, not a string"]),
        ('version = "1.0"\n', 'version = "1.0"\nui = 1\n',
         ["r.toml:6: app.ui: must be a table, not an integer"]),
        ("[runtime]\n", "runtime = 3\n[r]\n",
         ["r.toml:7: app.runtime: unknown key (allowed: name, version, summary, ui)",
          "r.toml:8: r: unknown key (allowed: format_version, app, runtime, packages, targets, "
          "service, kernels, node, build, checks)",
          "r.toml: runtime: missing table [runtime]"]),
        ('triples = ["x86_64-unknown-linux-gnu"]',
         'triples = ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"]',
         ["r.toml:18: targets.triples: lists 'x86_64-unknown-linux-gnu' twice"]),
        ("[packages]\n", "[packages]\nallow_sdists = [1]\n",
         ["r.toml:12: packages.allow_sdists[0]: must be a string, not an integer"]),
        ("[targets]\n", "[targets]\ntriples = []\n[t]\n",
         ["r.toml:18: targets.triples: must not be empty",
          "r.toml:19: t: unknown key (allowed: format_version, app, runtime, packages, targets, "
          "service, kernels, node, build, checks)"]),
    ],
)
def test_each_kind_of_schema_rule_is_worded(old: str, new: str, expected: list[str]) -> None:
    assert old in GOOD
    assert _problems(GOOD.replace(old, new)) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ('\n[service]\ncommand = ["bin/x"]\nenv = 1\n',
         ["r.toml:22: service.env: must be a table of strings, not an integer"]),
        ("\n[service]\nport = 80\n", ["r.toml:20: service.command: missing required key"]),
        ("\n[checks]\ncommands = [1]\n",
         ["r.toml:21: checks.commands[0]: must be a non-empty array of strings (the command and "
          'its arguments, e.g. ["jupyter", "nbextension", "enable", "--sys-prefix", "--py", '
          '"x"]), not an integer']),
    ],
)
def test_tables_and_arrays_of_the_wrong_type_are_worded(tail: str, expected: list[str]) -> None:
    assert _problems(GOOD + tail) == expected


def test_kernels_settings_reach_the_model_with_pythons_in_numeric_order() -> None:
    text = GOOD + ('\n[service]\ncommand = ["bin/jupyter-notebook"]\nkind = "jupyter"\n'
                   '\n[kernels]\nimage_python = "off"\nwheelhouse = ["ipykernel==6.29.5"]\n'
                   'wheelhouse_pythons = ["3.12", "3.9", "3.10"]\n')
    kernels = parse_recipe_text(text, path="r.toml").kernels
    assert kernels is not None
    assert kernels.image_python == "off"
    assert kernels.wheelhouse == ("ipykernel==6.29.5",)
    assert kernels.wheelhouse_pythons == ("3.9", "3.10", "3.12")


@pytest.mark.parametrize(
    ("value", "kind"),
    [("true", "a boolean"), ("[]", "an array"), ("{}", "a table"), ("1979-05-27", "a date"),
     ("1979-05-27T07:32:00Z", "a date-time"), ("1979-05-27T07:32:00", "a date-time"),
     ("07:32:00", "a time")],
)
def test_a_value_of_the_wrong_type_is_named_as_toml_calls_it(value: str, kind: str) -> None:
    assert _problems(GOOD.replace('name = "demo"', f"name = {value}")) == [
        f"r.toml:4: app.name: must be a string, not {kind}"]


def test_every_setting_reaches_the_model() -> None:
    text = GOOD.replace('version = "1.0"\n', (
        'version = "1.0"\nsummary = "A demo"\n[app.ui]\nname = "Demo"\nicon = "icons/d.png"\n'
        'kind = "cli"\naccepted_env = ["B", "A", "B"]\n')).replace("[packages]\n", (
            '[packages]\nexpose = ["pyjoke"]\nindex_url = "https://example.invalid/simple"\n'))
    text += ('\n[service]\ncommand = ["bin/x", "--port={port}"]\nprotocol = "tcp"\nport = 9000\n'
             'url_template = "/lab"\nenv = { B = "2", A = "1" }\n')
    recipe = parse_recipe_text(text, path="r.toml")
    assert (recipe.version, recipe.summary) == ("1.0", "A demo")
    assert recipe.ui == Ui(name="Demo", icon="icons/d.png", kind=UiKind.CLI,
                           accepted_env=("A", "B"))
    assert recipe.packages.expose == ("pyjoke",)
    assert recipe.packages.index_url == "https://example.invalid/simple"
    assert recipe.service == Service(command=("bin/x", "--port={port}"), protocol=Protocol.TCP,
                                     port=9000, url_template="/lab",
                                     env=(("A", "1"), ("B", "2")))


def test_service_defaults() -> None:
    recipe = parse_recipe_text(GOOD + '\n[service]\ncommand = ["bin/x"]\n', path="r.toml")
    assert recipe.service == Service(command=("bin/x",), kind=ServiceKind.COMMAND,
                                     protocol=Protocol.HTTP, port=8888, url_template="/", env=())
    assert recipe.summary == "" and recipe.ui.icon is None and recipe.ui.accepted_env == ()


HINT = "  hint: pass the path of a recipe TOML file, e.g. recipes/jupyter-6.toml"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "{p}: recipe not found\n" + HINT),
        (lambda p: p.mkdir(), "{p}: recipe is not a regular file (a directory, FIFO or device)\n"
         + HINT),
        (lambda p: p.write_bytes(b"\xff\xfe"), "{p}: recipe is not UTF-8 text: 'utf-8' codec "
         "can't decode byte 0xff in position 0: invalid start byte\n" + HINT),
        (lambda p: p.write_bytes(b"#" * ((1 << 20) + 1)), "{p}: recipe larger than 1 MiB\n"
         "  hint: a recipe is a small hand-written file; check the path"),
    ],
    ids=["missing", "directory", "not-utf8", "too-large"],
)
def test_a_recipe_file_that_cannot_be_read_is_named(tmp_path: Path, make: Any,
                                                    expected: str) -> None:
    path = tmp_path / "r.toml"
    make(path)
    with pytest.raises(BuilderError) as info:
        load_recipe(path)
    assert str(info.value) == expected.format(p=path)
    assert load_recipe(ROOT / "recipes" / "jupyter-6.toml").name == "jupyter-6"


# -- the rules across keys ([kernels], PEP 508 in the wheelhouse), each message in full ----------

JUPYTER = GOOD + '\n[service]\ncommand = ["bin/jupyter-notebook"]\nkind = "jupyter"\n\n[kernels]\n'


@pytest.mark.parametrize(
    ("kernels", "expected"),
    [
        ('wheelhouse = ["ipykernel==6.29.5"]\n',
         ["r.toml:24: kernels.wheelhouse_pythons: kernels.wheelhouse and "
          "kernels.wheelhouse_pythons go together"]),  # a missing key: its table's line
        ('wheelhouse_pythons = ["3.12"]\n',
         ["r.toml:24: kernels.wheelhouse: kernels.wheelhouse and kernels.wheelhouse_pythons go "
          "together"]),
        ('image_python = "install"\nwheelhouse = ["ipykernel==6.29.5"]\n',
         ["r.toml:24: kernels.wheelhouse_pythons: kernels.wheelhouse and "
          "kernels.wheelhouse_pythons go together",
          'r.toml:25: kernels.image_python: "install" needs kernels.wheelhouse (e.g. '
          '["ipykernel==6.29.5"]) and kernels.wheelhouse_pythons']),
        ('image_python = "install"\nwheelhouse_pythons = ["3.12"]\n',
         ["r.toml:24: kernels.wheelhouse: kernels.wheelhouse and kernels.wheelhouse_pythons go "
          "together",
          'r.toml:25: kernels.image_python: "install" needs kernels.wheelhouse (e.g. '
          '["ipykernel==6.29.5"]) and kernels.wheelhouse_pythons']),
        ('wheelhouse = ["ipykernel==6.29.5", "ipykernel @ https://example.invalid/k.whl"]\n'
         'wheelhouse_pythons = ["3.12"]\n',
         ["r.toml:25: kernels.wheelhouse[1]: direct URL requirements cannot be locked by hash "
          "from an index; name a version"]),
    ],
    ids=["wheelhouse-alone", "pythons-alone", "install-without-pythons",
         "install-without-wheelhouse", "url-in-wheelhouse"],
)
def test_the_kernels_rules_are_worded_and_located(kernels: str, expected: list[str]) -> None:
    assert _problems(JUPYTER + kernels) == expected


@pytest.mark.parametrize("kernels", [
    'image_python = "install"\nwheelhouse = ["ipykernel==6.29.5"]\nwheelhouse_pythons = ["3.12"]\n',
    'wheelhouse = ["ipykernel==6.29.5"]\nwheelhouse_pythons = ["3.12"]\n',
    'image_python = "offer"\n',
    "",
])
def test_kernels_that_follow_the_rules_are_accepted(kernels: str) -> None:
    recipe = parse_recipe_text(JUPYTER + kernels, path="r.toml")
    assert recipe.kernels is not None


@pytest.mark.parametrize("tail", [
    "\n[kernels]\n",
    '\n[service]\ncommand = ["bin/x"]\n\n[kernels]\n',
    '\n[service]\ncommand = ["bin/x"]\nkind = "code-server"\n\n[kernels]\n',
])
def test_kernels_without_a_jupyter_service_are_refused(tail: str) -> None:
    line = (GOOD + tail).splitlines().index("[kernels]") + 1
    assert _problems(GOOD + tail) == [
        f'r.toml:{line}: kernels: kernels need a Jupyter service ([service] kind = "jupyter")']


def test_a_requirement_that_is_not_pep_508_says_why_in_one_line() -> None:
    problems = _problems(GOOD.replace('"six",', '"six>>1",'))
    assert len(problems) == 1
    prefix = "r.toml:14: packages.requirements[1]: not a valid PEP 508 requirement: Expected "
    assert problems[0].startswith(prefix) and "\n" not in problems[0], problems


def test_problems_on_one_line_are_in_key_order_with_indices_as_numbers() -> None:
    """The schema's problem (at [10]) is found before the code's (at [2]); both are on line 12,
    and [2] comes first (as text, "10" would sort before "2")."""
    items = ", ".join('"x>>1"' if i == 2 else "10" if i == 10 else f'"p{i}"' for i in range(11))
    text = GOOD.replace('requirements = [\n    "pyjokes==0.8.3",\n    "six",\n]',
                        f"requirements = [{items}]")
    problems = _problems(text)
    assert [p.split(": ", 2)[:2] for p in problems] == [
        ["r.toml:12", "packages.requirements[2]"], ["r.toml:12", "packages.requirements[10]"]]


def test_a_duplicate_is_named_even_when_it_is_not_the_first_item() -> None:
    triples = 'triples = ["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu", ' \
              '"x86_64-unknown-linux-gnu"]'
    assert _problems(GOOD.replace('triples = ["x86_64-unknown-linux-gnu"]', triples)) == [
        "r.toml:18: targets.triples: lists 'x86_64-unknown-linux-gnu' twice"]


def test_a_recipe_path_the_system_refuses_is_named_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / ("r" * 300 + ".toml")  # longer than a file name may be: ENAMETOOLONG
    with pytest.raises(BuilderError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: cannot read recipe: File name too long\n" + HINT


# -- sizes: every string, array and table is bounded, before the schema is checked --------------

def _with_summary(length: int) -> str:
    return GOOD.replace('version = "1.0"\n', f'version = "1.0"\nsummary = "{"s" * length}"\n')


def test_values_at_the_size_limits_pass_and_values_past_them_are_each_reported() -> None:
    """At the limits: the summary, a string, a key, an array, a table; past them: each one
    reported (the walk goes on after a long key), before the schema is checked."""
    names = ", ".join([f'"{"p" * MAX_STRING}"', *(f'"p{i}"' for i in range(1, MAX_ITEMS))])
    text = _with_summary(MAX_SUMMARY).replace(
        'requirements = [\n    "pyjokes==0.8.3",\n    "six",\n]', f"requirements = [{names}]")
    text += ('\n[service]\ncommand = ["bin/x"]\n[service.env]\n' + f'{"K" * MAX_STRING} = "1"\n'
             + "".join(f'V{i} = "1"\n' for i in range(1, MAX_ITEMS)))
    text += (f'\n[extra]\n{"k" * (MAX_STRING + 1)} = 1\n'
             f'list = ["a", "{"v" * (MAX_STRING + 1)}"]\n'
             f"many = [{', '.join(['1'] * (MAX_ITEMS + 1))}]\n"
             "\n[more]\n" + "".join(f"k{i} = 1\n" for i in range(MAX_ITEMS + 1)))
    with pytest.raises(ValidationError) as info:
        parse_recipe_text(text, path="r.toml")
    line = text.splitlines().index("[extra]") + 1
    assert [p.render() for p in info.value.problems] == [
        f"r.toml:{line}: extra: a key is too long: 4097 characters (at most 4096)",
        f"r.toml:{line + 2}: extra.list[1]: too long: 4097 characters (at most 4096)",
        f"r.toml:{line + 3}: extra.many: too many entries: 4097 (at most 4096)",
        f"r.toml:{line + 5}: more: too many keys: 4097 (at most 4096)",
    ]
    assert info.value.hint == "shorten these values and run the command again"


def test_a_summary_past_its_own_limit_is_reported() -> None:
    assert _problems(_with_summary(MAX_SUMMARY + 1)) == [
        "r.toml:6: app.summary: too long: 1025 characters (at most 1024)"]


def test_checking_the_service_of_a_recipe_that_has_one_is_accepted() -> None:
    text = GOOD + '\n[service]\ncommand = ["bin/x"]\n\n[checks]\nservice = true\n'
    assert parse_recipe_text(text, path="r.toml").checks.service is True
    assert _problems(GOOD + "\n[checks]\nservice = true\n") == [
        "r.toml:21: checks.service: the recipe has no [service] to check"]


def test_a_key_that_breaks_the_schema_and_a_code_rule_gets_the_schema_s_message() -> None:
    """["six", "Six"] is one project twice (a code rule); ["six", "six"] also breaks the
    schema's uniqueItems, whose wording names the item."""
    assert _problems(GOOD.replace("[packages]\n", '[packages]\nallow_sdists = ["six", "Six"]\n')
                     ) == ["r.toml:12: packages.allow_sdists: lists a project twice"]
    assert _problems(GOOD.replace("[packages]\n", '[packages]\nallow_sdists = ["six", "six"]\n')
                     ) == ["r.toml:12: packages.allow_sdists: lists 'six' twice"]


def test_a_recipe_file_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    """1 MiB is read (and then found not to be UTF-8: no TOML parsing of a megabyte in a unit
    test); one byte more is refused unread (``test_a_recipe_file_that_cannot_be_read_is_named``)."""
    path = tmp_path / "r.toml"
    path.write_bytes(b"\xff" * (1 << 20))
    with pytest.raises(BuilderError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}: recipe is not UTF-8 text: ")


def test_the_runtime_flavor_and_the_glibc_exemptions_reach_the_model() -> None:
    text = GOOD.replace('pbs_release = "20240107"\n',
                        'pbs_release = "20240107"\nflavor = "install_only_stripped"\n') \
        + 'glibc_floor = "2.28"\nglibc_exempt = ["lib/b.so", "lib/a*.so", "lib/b.so"]\n'
    recipe = parse_recipe_text(text, path="r.toml")
    assert recipe.runtime.flavor == "install_only_stripped"
    assert recipe.targets.glibc_floor == "2.28"
    assert recipe.targets.glibc_exempt == ("lib/a*.so", "lib/b.so")


def test_a_problem_inside_one_form_of_a_choice_does_not_hide_the_next_problem() -> None:
    """allow_sdists is true, false or an array of names: the array form fits, and what is wrong
    inside it is reported, and so is the next problem the schema finds."""
    text = GOOD.replace("[packages]\n", '[packages]\nallow_sdists = ["six", "not a name"]\n') \
        .replace("[targets]\n", '[targets]\nglibc_floor = "2.5"\n')
    assert _problems(text) == [
        "r.toml:12: packages.allow_sdists[1]: 'not a name' is not a project name",
        "r.toml:19: targets.glibc_floor: '2.5' is not 2.17 or later (the floor of "
        "python-build-standalone)"]


def test_a_key_with_two_problems_gets_the_first_one() -> None:
    """The name "1" is not a variable name, and its value is not a string: one message per key,
    the first the schema finds."""
    assert _problems(GOOD + '\n[service]\ncommand = ["bin/x"]\nenv = { "1" = 2 }\n') == [
        "r.toml:22: service.env.1: '1' is not an environment variable name"]


@pytest.mark.parametrize(("tail", "expected"), [
    # tomlkit names no line for these two: the header's line is found by builder's own scan
    ('\n[service]\ncommand = ["bin/x"]\nenv.A = "1"\n\n[service.env]\nB = "2"\n',
     "r.toml:24: TOML syntax error: Redefinition of an existing table"),
    ('\n[service]\ncommand = ["bin/x"]\nenv = "1"\n\n[service.env]\nB = "2"\n',
     'r.toml:24: TOML syntax error: Key "env" already exists. (each key may appear once per '
     "table)"),
    ('\n[service]\ncommand = ["bin/x"]\ncommand = ["bin/y"]\n',
     'r.toml:22: TOML syntax error: Key "command" already exists. (each key may appear once '
     "per table)"),
    ('\n[service]\ncommand = ["bin/x"]\nport = 80 80\n',
     "r.toml:22: TOML syntax error: Unexpected character: '8' at line 22 col 10"),
])
def test_each_kind_of_toml_error_is_worded(tail: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_recipe_text(GOOD + tail, path="r.toml")
    assert [p.render() for p in info.value.problems] == [expected]
    assert info.value.problems[0].key == ""  # a str, as for every problem: no key here
    assert info.value.hint is None


def test_a_recipe_with_problems_is_reported_as_the_user_reads_it() -> None:
    with pytest.raises(ValidationError) as info:
        parse_recipe_text(GOOD.replace('name = "demo"', 'name = ""') + "\n[extras]\n",
                          path="r.toml")
    assert str(info.value) == (
        "2 problems found:\n"
        "r.toml:4: app.name: '' is not a lowercase name of [a-z0-9._-] (it becomes "
        "/opt/apps/<name>)\n"
        "r.toml:20: extras: unknown key (allowed: format_version, app, runtime, packages, "
        "targets, service, kernels, node, build, checks)\n"
        "  hint: fix the recipe and run the command again")
