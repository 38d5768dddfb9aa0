"""``agent check`` and libstdc++: a bundle with a Node.js app needs the image's libstdc++.so.6
to define the GLIBCXX_ version its ``node`` links against (manifest ``node.libstdcxx``).

The libraries are fabricated bytes (``elf_with_verdefs``); one test reads this host's real
libstdc++.so.6 when there is one, to show the fabricated files look like the real thing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from agent_factories import (
    EM_AARCH64,
    debian,
    elf,
    elf_with_verdefs,
    libstdcxx_versions,
    make_bundle,
    manifest_dict,
    node_entry,
    put,
)

from builder.agent.compat.model import (
    BundleNeeds,
    CheckResult,
    ImageFacts,
    Verdict,
    image_from_numbers,
)
from builder.agent.compat.probe import probe_rootfs
from builder.agent.compat.render import render_result, result_to_dict
from builder.agent.compat.verdict import LIBSTDCXX_HINT, check_compat
from builder.agent.manifest_check import manifest_schema
from builder.cli.main import main
from builder.errors import BuilderError
from builder.schema import problems

LIB = "/usr/lib/x86_64-linux-gnu"
LOOKED = f"/usr/lib, {LIB}"  # in a debian() root (its ``/lib`` is a link to /usr/lib)


def node_needs(libstdcxx: str | None = "GLIBCXX_3.4.21") -> BundleNeeds:
    return BundleNeeds.from_manifest(manifest_dict(glibc_floor="2.28",
                                                   glibc_floor_file="app/bin/node",
                                                   node=node_entry(libstdcxx)), where="m.json")


def check_root(root: Path, libstdcxx: str | None = "GLIBCXX_3.4.21") -> CheckResult:
    return check_compat(node_needs(libstdcxx), probe_rootfs(root))


# -- the manifest -------------------------------------------------------------------------------


def test_node_entry_is_schema_valid() -> None:
    for value in ("GLIBCXX_3.4.21", None):
        assert list(problems(manifest_dict(node=node_entry(value)), manifest_schema())) == []


def test_bundle_needs_from_the_manifest() -> None:
    needs = node_needs()
    assert (needs.libstdcxx, needs.libstdcxx_for) == ((3, 4, 21), "Node.js")
    assert (node_needs(None).libstdcxx, node_needs(None).libstdcxx_for) == (None, None)
    jupyter = BundleNeeds.from_manifest(manifest_dict(glibc_floor="2.34"), where="m.json")
    assert (jupyter.libstdcxx, jupyter.libstdcxx_for) == (None, None)
    explicit_null = BundleNeeds.from_manifest(manifest_dict(node=None), where="m.json")
    assert explicit_null.libstdcxx is None


@pytest.mark.parametrize(("node", "message"), [
    ({"libstdcxx": "3.4.21"},
     "m.json: the manifest's node.libstdcxx is not a GLIBCXX_x.y.z version: '3.4.21'"),
    ({"libstdcxx": "GLIBCXX_3.4.x"},
     "m.json: the manifest's node.libstdcxx is not a GLIBCXX_x.y.z version: 'GLIBCXX_3.4.x'"),
    ({"libstdcxx": "CXXABI_1.3.13"},
     "m.json: the manifest's node.libstdcxx is not a GLIBCXX_x.y.z version: 'CXXABI_1.3.13'"),
    ({"libstdcxx": 21}, "m.json: the manifest's node.libstdcxx is not a GLIBCXX_x.y.z version: 21"),
    ("node", "m.json: the manifest's node is not an object: 'node'"),
])
def test_malformed_libstdcxx_need(node: Any, message: str) -> None:
    with pytest.raises(BuilderError) as caught:
        BundleNeeds.from_manifest(manifest_dict(node=node), where="m.json")
    assert caught.value.message.splitlines()[0] == message


# -- reading the image --------------------------------------------------------------------------


def test_libstdcxx_read_through_the_images_links(tmp_path: Path) -> None:
    facts = probe_rootfs(debian(tmp_path, "2.36", libstdcxx="3.4.30"))
    assert (facts.libstdcxx_checked, facts.libstdcxx) == (True, (3, 4, 30))
    assert facts.libstdcxx_from == f"{LIB}/libstdc++.so.6"
    assert (facts.libc_version, facts.arch) == ((2, 36), "x86_64")  # the rest as before


def test_no_libstdcxx_in_the_image(tmp_path: Path) -> None:
    facts = probe_rootfs(debian(tmp_path))
    assert (facts.libstdcxx_checked, facts.libstdcxx, facts.libstdcxx_from) == (True, None, None)


def test_the_images_own_architecture_first(tmp_path: Path) -> None:
    debian(tmp_path, libstdcxx="3.4.30")
    put(tmp_path, "usr/lib/aarch64-linux-gnu/libstdc++.so.6",  # foreign, sorts first, newer
        elf_with_verdefs(libstdcxx_versions("3.4.33"), machine=EM_AARCH64))
    facts = probe_rootfs(tmp_path)
    assert (facts.libstdcxx, facts.libstdcxx_from) == ((3, 4, 30), f"{LIB}/libstdc++.so.6")


def test_a_host_libstdcxx_is_never_read(tmp_path: Path) -> None:
    """An absolute link means the image's path, which does not exist in the image."""
    debian(tmp_path)
    put(tmp_path, "usr/lib/libstdc++.so.6", link=f"{LIB}/libstdc++.so.6.0.30")
    assert probe_rootfs(tmp_path).libstdcxx_from is None


def test_glibc_version_from_its_version_definitions(tmp_path: Path) -> None:
    """The helper reading GLIBCXX_ definitions is the one reading GLIBC_ ones."""
    put(tmp_path, "bin/sh", elf())
    put(tmp_path, "lib64/libc.so.6", elf_with_verdefs(
        ["GLIBC_2.2.5", "GLIBC_2.36", "GLIBC_2.3.4", "GLIBC_PRIVATE", "GLIBCXX_3.4.99"],
        soname="libc.so.6"))
    facts = probe_rootfs(tmp_path)
    assert facts.libc_version == (2, 36)
    assert facts.libc_from == "/lib64/libc.so.6 (the highest GLIBC_x.y it defines)"


def test_this_hosts_real_libstdcxx(tmp_path: Path) -> None:
    host = Path(f"{LIB}/libstdc++.so.6")
    if not host.is_file():
        pytest.skip(f"no {host} on this host")
    debian(tmp_path, "2.36")
    shutil.copyfile(host, tmp_path / LIB.lstrip("/") / "libstdc++.so.6")
    names = re.findall(rb"\0GLIBCXX_(\d+\.\d+(?:\.\d+)?)\0", host.read_bytes())
    newest = max(tuple(int(p) for p in n.decode().split(".")) for n in names)
    facts = probe_rootfs(tmp_path)
    assert facts.libstdcxx == newest >= (3, 4, 21)
    assert check_root(tmp_path).verdict is Verdict.COMPATIBLE


# -- verdicts -----------------------------------------------------------------------------------


def test_compatible(tmp_path: Path) -> None:
    result = check_root(debian(tmp_path, "2.36", libstdcxx="3.4.30"))
    assert result.verdict is Verdict.COMPATIBLE and result.hints == ()
    assert result.reasons == (
        f"needs glibc 2.28, image has 2.36 (from {LIB}/libc.so.6 (its version string))",
        f"needs libstdc++.so.6 with GLIBCXX_3.4.21, image has GLIBCXX_3.4.30 (from "
        f"{LIB}/libstdc++.so.6)",
        "architecture x86_64 matches")
    assert check_root(tmp_path, "GLIBCXX_3.4.30").verdict is Verdict.COMPATIBLE  # equal is enough


def test_too_old(tmp_path: Path) -> None:
    result = check_root(debian(tmp_path, "2.36", libstdcxx="3.4.19"))
    assert result.verdict is Verdict.INCOMPATIBLE and result.exit_code == 3
    assert result.reasons[0] == ("needs libstdc++.so.6 with GLIBCXX_3.4.21 (Node.js), image has "
                                 f"GLIBCXX_3.4.19 (from {LIB}/libstdc++.so.6)")


def test_missing(tmp_path: Path) -> None:
    result = check_root(debian(tmp_path, "2.36"))
    assert result.verdict is Verdict.INCOMPATIBLE
    assert result.reasons[0] == ("needs libstdc++.so.6 with GLIBCXX_3.4.21 (Node.js), the image "
                                 f"has no libstdc++.so.6 (looked in {LOOKED})")
    assert result.hints == (LIBSTDCXX_HINT,)
    assert render_result(result).endswith(f"\n  hint: {LIBSTDCXX_HINT}")
    assert "install libstdc++6" in LIBSTDCXX_HINT


@pytest.mark.parametrize("data", [elf_with_verdefs(["CXXABI_1.3", "GLIBCXX_LDBL_3.4"]), elf(),
                                  b"not an ELF file"])
def test_version_unknown(tmp_path: Path, data: bytes) -> None:
    debian(tmp_path, "2.36")
    put(tmp_path, f"{LIB}/libstdc++.so.6", data)
    result = check_root(tmp_path)
    assert result.verdict is Verdict.UNKNOWN and result.exit_code == 4
    assert result.reasons[0] == ("needs libstdc++.so.6 with GLIBCXX_3.4.21 (Node.js), the "
                                 "image's libstdc++.so.6 defines no GLIBCXX_ version "
                                 f"({LIB}/libstdc++.so.6)")


def test_incompatible_wins_over_unknown(tmp_path: Path) -> None:
    debian(tmp_path, "2.17")
    put(tmp_path, f"{LIB}/libstdc++.so.6", elf())
    result = check_root(tmp_path)
    assert result.verdict is Verdict.INCOMPATIBLE
    assert result.reasons[0].startswith("needs glibc 2.28 (app/bin/node), image has 2.17")
    assert "defines no GLIBCXX_ version" in result.reasons[1]


@pytest.mark.parametrize(("given", "verdict", "reason"), [
    (None, Verdict.COMPATIBLE,
     "needs libstdc++.so.6 with GLIBCXX_3.4.21 (Node.js): not checked (give --libstdcxx X.Y.Z, "
     "the newest GLIBCXX_ the image's libstdc++.so.6 defines, or --rootfs)"),
    ("3.4.30", Verdict.COMPATIBLE,
     "needs libstdc++.so.6 with GLIBCXX_3.4.21, image has GLIBCXX_3.4.30 (from --libstdcxx)"),
    ("GLIBCXX_3.4.21", Verdict.COMPATIBLE,
     "needs libstdc++.so.6 with GLIBCXX_3.4.21, image has GLIBCXX_3.4.21 (from --libstdcxx)"),
    ("3.4.19", Verdict.INCOMPATIBLE,
     "needs libstdc++.so.6 with GLIBCXX_3.4.21 (Node.js), image has GLIBCXX_3.4.19 (from "
     "--libstdcxx)"),
])
def test_numbers(given: str | None, verdict: Verdict, reason: str) -> None:
    image = image_from_numbers(arch="x86_64", libc="gnu", version="2.36", libstdcxx=given)
    result = check_compat(node_needs(), image)
    assert result.verdict is verdict
    assert [r for r in result.reasons if "libstdc++" in r] == [reason]


def test_numbers_refuse_a_bad_libstdcxx() -> None:
    with pytest.raises(BuilderError) as caught:
        image_from_numbers(arch="x86_64", libc="gnu", version="2.36", libstdcxx="new")
    assert caught.value.message == "--libstdcxx takes a version like 3.4.30, not 'new'"


def test_without_node_nothing_about_libstdcxx(tmp_path: Path) -> None:
    """Jupyter bundles: no libstdc++ reasons or hints, whatever the image has."""
    jupyter = BundleNeeds.from_manifest(manifest_dict(glibc_floor="2.34",
                                                      glibc_floor_file="app/bin/tiny"),
                                        where="m.json")
    bare = probe_rootfs(debian(tmp_path / "bare", "2.36"))
    broken = debian(tmp_path / "broken", "2.36")
    put(broken, f"{LIB}/libstdc++.so.6", b"junk")
    images: list[ImageFacts] = [bare, probe_rootfs(broken),
                                probe_rootfs(debian(tmp_path / "old", "2.36", libstdcxx="3.4.9")),
                                image_from_numbers(arch="x86_64", libc="gnu", version="2.36")]
    for image in images:
        result = check_compat(jupyter, image)
        assert result.verdict is Verdict.COMPATIBLE and result.hints == ()
        assert result.reasons == ("needs glibc 2.34, image has 2.36 (from "
                                  f"{image.libc_from})", "architecture x86_64 matches")


# -- the command --------------------------------------------------------------------------------


def test_cli_with_a_node_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "dist", name="vscode", overrides={
        "glibc_floor": "2.28", "glibc_floor_file": "app/bin/node", "node": node_entry()})
    store = tmp_path / "store"
    assert main(["agent", "install", str(bundle.archive), "--store", str(store)]) == 0  # schema
    capsys.readouterr()
    good = debian(tmp_path / "good", "2.36", libstdcxx="3.4.30")
    bare = debian(tmp_path / "bare", "2.36")

    assert main(["agent", "check", "vscode", "--store", str(store), "--rootfs", str(good)]) == 0
    assert "GLIBCXX_3.4.21, image has GLIBCXX_3.4.30" in capsys.readouterr().out

    assert main(["agent", "check", str(bundle.archive), "--rootfs", str(bare)]) == 3
    out = capsys.readouterr().out
    assert out == (f"incompatible: vscode 1.0 (x86_64-unknown-linux-gnu) on {bare}\n"
                   f"  - needs libstdc++.so.6 with GLIBCXX_3.4.21 (Node.js), the image has no "
                   f"libstdc++.so.6 (looked in {LOOKED})\n"
                   f"  - needs glibc 2.28, image has 2.36 (from {LIB}/libc.so.6 (its version "
                   f"string))\n"
                   f"  - architecture x86_64 matches\n"
                   f"  hint: {LIBSTDCXX_HINT}\n")

    assert main(["agent", "check", str(bundle.sidecar), "--rootfs", str(bare), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["hints"] == [LIBSTDCXX_HINT]
    assert (data["bundle"]["libstdcxx"], data["bundle"]["libstdcxx_for"]) == ("3.4.21", "Node.js")
    assert (data["image"]["libstdcxx_checked"], data["image"]["libstdcxx"],
            data["image"]["libstdcxx_from"]) == (True, None, None)

    numbers = ["agent", "check", str(bundle.archive), "--arch", "x86_64", "--glibc", "2.36"]
    assert main([*numbers, "--json"]) == 0  # not checked: the verdict stays what it was
    data = json.loads(capsys.readouterr().out)
    assert any("not checked" in r for r in data["reasons"])
    assert (data["image"]["libstdcxx_checked"], data["image"]["libstdcxx"]) == (False, None)
    assert main([*numbers, "--libstdcxx", "3.4.30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["image"]["libstdcxx"] == "3.4.30"
    assert main([*numbers, "--libstdcxx", "3.4.19"]) == 3
    assert "image has GLIBCXX_3.4.19 (from --libstdcxx)" in capsys.readouterr().out
    assert main([*numbers, "--libstdcxx", "GLIBCXX_3.4.21"]) == 0
    capsys.readouterr()

    assert main([*numbers, "--libstdcxx", "latest"]) == 2
    assert "--libstdcxx takes a version like 3.4.30, not 'latest'" in capsys.readouterr().err
    assert main(["agent", "check", str(bundle.archive), "--rootfs", str(good),
                 "--libstdcxx", "3.4.30"]) == 2


def test_cli_output_of_a_jupyter_bundle_is_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "dist", overrides={"glibc_floor": "2.34",
                                                       "glibc_floor_file": "app/bin/tiny"})
    root = debian(tmp_path / "root", "2.36")  # no libstdc++ at all
    assert main(["agent", "check", str(bundle.archive), "--rootfs", str(root)]) == 0
    assert capsys.readouterr().out == (
        f"compatible: demo 1.0 (x86_64-unknown-linux-gnu) on {root}\n"
        f"  - needs glibc 2.34, image has 2.36 (from {LIB}/libc.so.6 (its version string))\n"
        "  - architecture x86_64 matches\n")
    assert main(["agent", "check", str(bundle.archive), "--arch", "x86_64", "--glibc", "2.36",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reasons"] == ["needs glibc 2.34, image has 2.36 (from --glibc)",
                               "architecture x86_64 matches"]
    assert data["hints"] == [] and data["bundle"]["libstdcxx"] is None
    assert result_to_dict(check_compat(
        BundleNeeds.from_manifest(bundle.manifest, where="m"),
        probe_rootfs(root)))["image"]["libstdcxx_checked"] is True


def test_put_writes_inside_the_root_only(tmp_path: Path) -> None:
    """The factory takes image paths: ``/usr/...`` is the image's, never the host's."""
    put(tmp_path, f"{LIB}/libstdc++.so.6", link="libstdc++.so.6.0.30")
    assert (tmp_path / LIB.lstrip("/") / "libstdc++.so.6").is_symlink()
    with pytest.raises(ValueError, match="is a link"):
        put(tmp_path, f"{LIB}/libstdc++.so.6", b"data")  # would write through the link
    with pytest.raises(ValueError, match="leaves the root"):
        put(tmp_path, "../outside", b"data")
