"""``builder index DIR`` and the schema checker agents run on untrusted JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from agent_factories import make_bundle, manifest_dict

from builder.agent.manifest_check import manifest_schema
from builder.catalog import write_index
from builder.catalog.codec import catalog_from_dict, index_schema
from builder.cli.main import main
from builder.errors import BuilderError, InternalError
from builder.schema import problems, unsupported, violations


def test_index_is_deterministic_sorted_and_valid(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    for version in ("2.0", "10.0", "1.0"):
        make_bundle(dist, version=version)
    make_bundle(dist, name="another")
    first, _ = write_index(dist)
    data = first.read_bytes()
    jsonschema.validate(json.loads(data), index_schema())
    entries = json.loads(data)["bundles"]
    assert [(e["name"], e["version"]) for e in entries] == [
        ("another", "1.0"), ("demo", "1.0"), ("demo", "2.0"), ("demo", "10.0")]
    demo = entries[1]
    assert demo["filename"] == "demo-1.0-x86_64-unknown-linux-gnu-fab.tar.zst"
    assert set(demo) >= {"sha256", "size", "glibc_floor", "ui", "input_digest", "target"}
    write_index(dist)
    assert first.read_bytes() == data  # same bundles, same bytes
    assert data.endswith(b"\n") and b"\n  " in data


def test_index_without_sidecars_reads_the_archives(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    with_sidecar = json.loads(write_index(tmp_path)[0].read_text())
    bundle.sidecar.unlink()
    assert json.loads(write_index(tmp_path)[0].read_text()) == with_sidecar


def test_index_refuses_a_sidecar_of_other_bytes(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    bundle.archive.write_bytes(bundle.archive.read_bytes() + b"\0")
    with pytest.raises(BuilderError, match="the sidecar does not describe this archive"):
        write_index(tmp_path)


def test_cli_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_bundle(tmp_path)
    assert main(["index", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "index.json")
    assert "1 bundle(s) indexed" in captured.err
    assert main(["index", str(tmp_path / "missing")]) == 1


def test_hostile_index_entries_are_refused() -> None:
    good = {"format_version": 1, "bundles": []}
    catalog_from_dict(good, where="i")
    bad_entry = {"name": "demo", "version": "1", "target": "x86_64-unknown-linux-gnu",
                 "arch": "x86_64", "libc": "gnu", "input_digest": "sha256:" + "0" * 64,
                 "sha256": "0" * 64, "size": 1, "filename": "../../etc/passwd.tar.zst",
                 "glibc_floor": None, "summary": "", "ui": {}, "files": 1,
                 "unpacked_bytes": 1}
    with pytest.raises(BuilderError) as err:
        catalog_from_dict({"format_version": 1, "bundles": [bad_entry]}, where="i")
    assert "bundles[0].filename: '../../etc/passwd.tar.zst' does not match" in str(err.value)


def mutations() -> list[tuple[str, Any]]:
    base = manifest_dict()
    cases: list[tuple[str, Any]] = [("valid", base), ("not an object", [base]), ("null", None)]
    for key, value in (("format_version", 2), ("format_version", True), ("name", 3),
                       ("target", "x86_64-pc-windows"), ("libc", "bionic"),
                       ("input_digest", "md5:00"), ("glibc_floor", "3.1"),
                       ("glibc_floor", None), ("sizes", {"files": 1}),
                       ("sizes", {"files": 1.5, "unpacked_bytes": 2}),
                       ("sizes", {"files": True, "unpacked_bytes": 2}),
                       ("packages", [{"name": "x"}]), ("extra", 1), ("ui", []),
                       ("interpreter", {**base["interpreter"], "origin": "conda"}),
                       ("launch", None), ("launch", 3), ("launch", {"launcher": "x"}),
                       ("launch", {"launcher": "app/bin/launch", "service_def":
                                   "service-def.json", "s6_service": "app/share/s6",
                                   "flavor": None, "image_python": "offer",
                                   "wheelhouse": {"3.11": 3}}),
                       ("launch", {"launcher": "l", "service_def": "s", "s6_service": "s",
                                   "flavor": "notebook6", "image_python": "offer",
                                   "wheelhouse": {"3.11": "3"}}),
                       ("labels", {"a": "b"}), ("labels", {"a": 1})):
        changed = copy.deepcopy(base)
        changed[key] = value
        cases.append((f"{key}={value!r}", changed))
    missing = copy.deepcopy(base)
    del missing["sizes"]
    cases.append(("missing sizes", missing))
    return cases


@pytest.mark.parametrize(("label", "data"), mutations(), ids=[m[0] for m in mutations()])
def test_schema_check_agrees_with_jsonschema(label: str, data: Any) -> None:
    ours = list(problems(data, manifest_schema()))
    theirs = list(jsonschema.Draft202012Validator(manifest_schema()).iter_errors(data))
    assert bool(ours) == bool(theirs), (label, ours, [e.message for e in theirs])


def test_our_schemas_use_only_supported_keywords() -> None:
    assert unsupported(manifest_schema()) == set()
    assert unsupported(index_schema()) == set()


def test_schema_check_names_the_key_and_refuses_unknown_keywords() -> None:
    data = manifest_dict()
    data["sizes"]["files"] = "3"
    assert list(problems(data, manifest_schema())) == ["sizes.files: expected integer, got string"]
    with pytest.raises(InternalError, match="not supported"):
        list(problems(1, {"multipleOf": 2}))


# -- builder.schema's generic wording (the words a bad manifest or index is refused with) ------

_EVERY_RULE: dict[str, Any] = {
    "type": "object", "required": ["r"], "additionalProperties": False, "properties": {
        "t": {"type": ["integer", "null"]}, "b": {"type": "integer"}, "c": {"const": 1},
        "e": {"enum": ["a", "b"]}, "p": {"type": "string", "pattern": "^x"},
        "o": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "a": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
        "lo": {"minimum": 1}, "hi": {"maximum": 2}, "short": {"minLength": 2},
        "long": {"maxLength": 1}, "few": {"minItems": 2}, "u": {"uniqueItems": True},
        "n": {"not": {"const": 0}}, "r": {}}}


def test_each_kind_of_schema_rule_has_its_generic_message() -> None:
    value = {"t": "s", "b": True, "c": 2, "e": "z", "p": "y", "o": 1, "a": 1.5, "lo": 0,
             "hi": 3, "short": "x", "long": "yy", "few": [1], "u": [1, 1], "n": 0, "x": 1}
    assert list(problems(value, _EVERY_RULE)) == [
        "r: missing",
        "a: matches none of the allowed forms",
        "b: expected integer, got boolean",
        "c: must be 1, not 2",
        "e: must be one of ['a', 'b'], not 'z'",
        "few: [1] is fewer items than 2",
        "hi: 3 is more than 2",
        "lo: 0 is less than 1",
        "long: 'yy' is longer than 1",
        "n: fails 'not'",
        "o: matches 2, not exactly one, of the allowed forms",
        "p: 'y' does not match '^x'",
        "short: 'x' is shorter than 2",
        "t: expected integer or null, got string",
        "u: fails 'uniqueItems'",
        "x: unexpected key",
    ]
    assert list(problems({"r": 1, "c": 1, "e": "b", "lo": 1, "hi": 2, "short": "xx",
                          "long": "y", "few": [1, 2], "n": 1, "t": None}, _EVERY_RULE)) == []


@pytest.mark.parametrize(("value", "schema", "path", "expected"), [
    (1, {"type": "object"}, "", "(top level): expected object, got integer"),
    ((1,), {"type": "array"}, "", "(top level): expected array, got tuple"),
    (None, {"type": "string"}, "k", "k: expected string, got null"),
])
def test_a_type_problem_names_the_place_and_the_json_type(value: Any, schema: Any, path: str,
                                                          expected: str) -> None:
    assert list(problems(value, schema, path)) == [expected]


def test_an_unsupported_keyword_is_found_wherever_it_is() -> None:
    """A schema that grew a keyword builder.schema does not implement is a bug to report,
    wherever the keyword sits (the annotations are not keywords)."""
    schema = {
        "$schema": "s", "$id": "i", "title": "t", "description": "d", "x-expected": "e",
        "multipleOf": 2, "items": {"format": "date"}, "additionalProperties": {"k1": 1},
        "not": {"k2": 1}, "propertyNames": {"k3": 1}, "oneOf": [{"type": "string"}, {"k4": 1}],
        "anyOf": [{"k5": 1}], "allOf": [{"k6": 1}], "prefixItems": [{"k7": 1}],
        "properties": {"p": {"k8": 1}, "q": {"items": {"oneOf": [{"k9": 1}]}}},
    }
    assert unsupported(schema) == {"multipleOf", "format", "k1", "k2", "k3", "k4", "k5", "k6",
                                   "k7", "k8", "k9"}
    assert unsupported([{"a": 1}, {"b": 1}]) == {"a", "b"}
    assert unsupported([]) == set() and unsupported(True) == set()
    with pytest.raises(InternalError) as info:
        list(problems({"p": 1}, {"properties": {"p": {"format": "date"}}}))
    assert str(info.value).startswith(
        "internal error: schema keyword(s) ['format'] not supported by builder.schema\n")


def test_each_violation_carries_its_place_keyword_subschema_and_value() -> None:
    """What builder.recipe.parse words its messages from (``Violation``'s documented fields)."""
    array = {"type": "array", "minItems": 3, "uniqueItems": True, "items": {"type": "integer"}}
    table = {"type": "object", "required": ["a"], "additionalProperties": False,
             "properties": {"a": {"type": "string"}, "list": array}}
    found = [(v.path, v.keyword, v.schema, v.value)
             for v in violations({"list": [1, 1, "2"], "x": 2}, table)]
    assert found == [("a", "required", {"type": "string"}, None),
                     ("list", "uniqueItems", array, [1, 1, "2"]),
                     ("list[2]", "type", {"type": "integer"}, "2"),
                     ("x", "additionalProperties", table, 2)]


@pytest.mark.parametrize(("value", "schema", "accepted"), [
    (True, {"const": True}, True), (1, {"const": True}, False), (True, {"const": 1}, False),
    ([1, True], {"const": [1, True]}, True), ([1, 1], {"const": [1, True]}, False),
    ([1], {"const": [2]}, False), ([1, 2], {"const": [1]}, False), (1, {"const": [1]}, False),
    ([1], {"const": 1}, False), ([[1], [1]], {"uniqueItems": True}, False),
    ([1, True], {"uniqueItems": True}, True), ([False], {"enum": [0, [False]]}, True),
    (False, {"enum": [0, [0]]}, False),
])
def test_json_equality_tells_true_from_1_and_compares_arrays_item_by_item(
        value: Any, schema: Any, accepted: bool) -> None:
    assert (list(problems(value, schema)) == []) is accepted


def _found(value: Any, schema: Any, path: str = "") -> list[tuple[str, str, Any, Any]]:
    return [(v.path, v.keyword, v.schema, v.value) for v in violations(value, schema, path)]


def test_all_of_checks_each_form_at_the_value_s_own_place() -> None:
    schema = {"properties": {"n": {"allOf": [{"type": "integer"}, {"maximum": 3}]}}}
    assert list(problems({"n": 5}, schema, "pkg")) == ["pkg.n: 5 is more than 3"]
    assert list(problems({"n": "5"}, schema)) == ["n: expected integer, got string"]
    assert list(problems({"n": 3}, schema)) == []


def test_any_of_accepts_several_matching_forms_and_one_of_exactly_one() -> None:
    any_of = {"anyOf": [{"type": "integer"}, {"type": "number"}]}
    one_of = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    assert list(problems(1, any_of)) == []  # both forms match: fine for anyOf
    assert list(problems(1, one_of)) == [] and list(problems("s", one_of)) == []
    assert list(problems(1.5, one_of, "v")) == ["v: matches none of the allowed forms"]
    both = {"anyOf": [{"type": "string"}], "oneOf": [{"type": "integer"}]}
    assert [v.keyword for v in violations(None, both)] == ["anyOf", "oneOf"]
    assert [v.keyword for v in violations(None, {"oneOf": [{"type": "integer"}]})] == ["oneOf"]


def test_a_failed_one_of_carries_the_failures_inside_the_form_its_value_fits() -> None:
    """What builder.recipe.parse words a failed oneOf from: the failures inside the one form
    whose type fits the value, at their own places; none when no form or several fit, or when
    the oneOf fails because several forms match."""
    table = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    forms = {"oneOf": [{"type": "string", "pattern": "^[a-z]+$"}, table]}
    [failed] = violations({"dep": {"name": 3}}, {"properties": {"dep": forms}}, "x")
    assert (failed.path, failed.keyword, failed.schema, failed.value) == (
        "x.dep", "oneOf", forms, {"name": 3})
    assert [(c.path, c.keyword, c.schema, c.value) for c in failed.causes] == [
        ("x.dep.name", "type", {"type": "string"}, 3)]
    [text] = violations("A", forms)
    assert [(c.path, c.keyword, c.value) for c in text.causes] == [("", "pattern", "A")]
    [no_fit] = violations(1, forms)
    assert no_fit.causes == ()
    several = {"oneOf": [{"type": "integer", "minimum": 5}, {"maximum": 10}, {"maximum": 20}]}
    [twice] = violations(3, several)  # the integer form fails, the two others match
    assert (twice.keyword, twice.causes) == ("oneOf", ())
    assert list(problems(3, several)) == [
        "(top level): matches 2, not exactly one, of the allowed forms"]


def test_required_reports_the_missing_property_s_own_subschema_or_an_empty_one() -> None:
    schema = {"required": ["a", "b"], "properties": {"a": {"type": "integer"}}}
    assert _found({}, schema, "top") == [("top.a", "required", {"type": "integer"}, None),
                                         ("top.b", "required", {}, None)]
    assert _found({"a": 1, "b": 2}, schema) == []


def test_additional_properties_default_to_allowed_and_can_carry_a_schema() -> None:
    assert _found({"x": 1, "y": "z"}, {"properties": {"x": {"type": "integer"}}}) == []
    assert _found({"x": 1}, {"additionalProperties": True}) == []
    typed = {"properties": {"k": {"type": "string"}}, "additionalProperties": {"type": "integer"}}
    assert _found({"k": "s", "a": 1, "b": "2"}, typed, "env") == [
        ("env.b", "type", {"type": "integer"}, "2")]
    assert list(problems({"k": "s", "b": "2"}, typed)) == ["b: expected integer, got string"]


def test_property_names_are_checked_as_strings_at_the_key_s_place() -> None:
    names = {"type": "string", "pattern": "^[a-z]+$"}
    schema = {"type": "object", "propertyNames": names,
              "properties": {"ok": {"type": "integer"}, "Bad": {"type": "integer"}}}
    assert _found({"ok": 1, "Bad": "x"}, schema, "deps") == [
        ("deps.Bad", "propertyNames", names, "Bad"),
        ("deps.Bad", "type", {"type": "integer"}, "x")]
    assert list(problems({"Bad": 1}, schema)) == ["Bad: fails 'propertyNames'"]
    assert _found({"ok": 1, "fine": 2}, schema) == []
