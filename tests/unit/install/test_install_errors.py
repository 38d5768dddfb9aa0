"""A damaged wheel and an install conflict are different errors with different advice."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from factories import WheelMember, fake_wheel

from builder.errors import BuilderError
from builder.install import CorruptWheelError, InstallConflictError, install_wheels

MINOR = "3.11"
SITE = f"lib/python{MINOR}/site-packages"


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    python_dir = tmp_path / "app" / "python"
    (python_dir / "bin").mkdir(parents=True)
    (python_dir / SITE).mkdir(parents=True)
    return python_dir


def install(prefix: Path, *wheels: Path) -> None:
    install_wheels([(w, "0" * 64) for w in wheels], python_dir=prefix, minor=MINOR)


def test_two_dists_writing_different_bytes_to_one_file_is_a_conflict(tmp_path: Path,
                                                                     prefix: Path) -> None:
    first = fake_wheel(tmp_path / "a", [
        WheelMember("alpha-1.0.data/scripts/shared-tool", b"#!/bin/sh\necho alpha\n", 0o755)],
        name="alpha")
    second = fake_wheel(tmp_path / "b", [
        WheelMember("beta-2.0.data/scripts/shared-tool", b"#!/bin/sh\necho beta\n", 0o755)],
        name="beta", version="2.0")
    with pytest.raises(InstallConflictError) as caught:
        install(prefix, second, first)
    error = caught.value
    assert error.exit_code == 1
    assert str(error) == (
        f"{second}: install conflict: beta 2.0 and alpha 1.0 both install "
        "python/bin/shared-tool, with different contents\n"
        "  hint: pip would keep whichever it installed last; builder does not guess. Drop one "
        "of the two from [packages] requirements (or pin versions that agree on this file) "
        "and lock again"
    )
    assert "corrupt" not in str(error) and "cache" not in str(error)


def test_an_entry_point_clashing_with_another_dists_script_names_both(tmp_path: Path,
                                                                     prefix: Path) -> None:
    first = fake_wheel(tmp_path / "a", [
        WheelMember("alpha-1.0.data/scripts/jupyter-contrib", b"#!/bin/sh\necho a\n", 0o755)],
        name="alpha")
    second = fake_wheel(tmp_path / "b", [WheelMember("beta/__init__.py", b"")], name="beta",
                        entry_points="[console_scripts]\njupyter-contrib = beta:main\n")
    with pytest.raises(InstallConflictError, match=r"beta 1\.0 and alpha 1\.0 both install "
                                                   r"python/bin/jupyter-contrib"):
        install(prefix, first, second)


def test_identical_bytes_from_two_dists_are_fine(tmp_path: Path, prefix: Path) -> None:
    # namespace packages often ship the same __init__.py; pip overwrites, nothing changes
    init = b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
    first = fake_wheel(tmp_path / "a", [WheelMember("ns/__init__.py", init),
                                        WheelMember("ns/a.py", b"")], name="ns_a")
    second = fake_wheel(tmp_path / "b", [WheelMember("ns/__init__.py", init),
                                         WheelMember("ns/b.py", b"")], name="ns_b")
    install(prefix, first, second)
    assert (prefix / SITE / "ns/__init__.py").read_bytes() == init
    for info in ("ns_a-1.0.dist-info", "ns_b-1.0.dist-info"):
        assert "ns/__init__.py," in (prefix / SITE / info / "RECORD").read_text()


def interpreter_pip(prefix: Path) -> Path:
    """The interpreter's own pip 23.3, as PBS ships it (RECORD and all)."""
    site = prefix / SITE
    files = {"pip/__init__.py": "__version__ = '23.3'\n", "pip/_old.py": "OLD = 1\n",
             "pip/__pycache__/_old.cpython-311.pyc": "pyc", "../../../bin/pip3": "#!/bin/sh\n",
             "pip-23.3.dist-info/METADATA": "Name: pip\nVersion: 23.3\n"}
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    rows = [f"{rel},," for rel in files if "__pycache__" not in rel]
    rows.append("pip-23.3.dist-info/RECORD,,")
    (site / "pip-23.3.dist-info/RECORD").write_text("\n".join(rows) + "\n")
    return site


def test_overwriting_the_interpreters_own_file_names_its_dist(tmp_path: Path,
                                                              prefix: Path) -> None:
    interpreter_pip(prefix)
    wheel = fake_wheel(tmp_path / "w", [WheelMember("pip/__init__.py", b"# vendored copy\n")],
                       name="notpip", version="0.1")
    with pytest.raises(InstallConflictError) as caught:
        install(prefix, wheel)
    assert caught.value.what == (
        "install conflict: notpip 0.1 would overwrite python/lib/python3.11/site-packages/pip/"
        "__init__.py, which the interpreter's pip 23.3 ships, with different contents")
    assert caught.value.hint is not None and caught.value.hint.startswith("drop notpip from")


def test_a_locked_dist_replaces_the_interpreters_copy_like_pip(tmp_path: Path,
                                                              prefix: Path) -> None:
    # pip uninstalls the old distribution (its RECORD, .pyc included) before installing
    site = interpreter_pip(prefix)
    wheel = fake_wheel(tmp_path / "w", [WheelMember("pip/__init__.py", b"__version__ = '25'\n")],
                       name="pip", version="25.0",
                       entry_points="[console_scripts]\npip3 = pip:main\n")
    install(prefix, wheel)
    assert (site / "pip/__init__.py").read_bytes() == b"__version__ = '25'\n"
    assert not (site / "pip/_old.py").exists()
    assert not (site / "pip/__pycache__").exists()
    assert not (site / "pip-23.3.dist-info").exists()
    assert (site / "pip-25.0.dist-info/RECORD").is_file()
    assert b"from pip import main" in (prefix / "bin/pip3").read_bytes()


def test_not_a_zip_is_a_damaged_wheel(tmp_path: Path, prefix: Path) -> None:
    wheel = tmp_path / "cache" / "wheels" / "ab12" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(CorruptWheelError) as caught:
        install(prefix, wheel)
    assert str(caught.value) == (
        f"{wheel}: cannot install demo-1.0-py3-none-any.whl: the wheel is damaged or malformed: "
        "File is not a zip file\n"
        f"  hint: delete {wheel.parent} from the cache and build again; if the same error comes "
        "back, the published wheel itself is broken: pin another version of it")


def test_a_member_that_does_not_match_record_is_a_damaged_wheel(tmp_path: Path,
                                                                prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [WheelMember("demo/__init__.py", b"X = 1\n")],
                       bad_hash=["demo/__init__.py"])
    with pytest.raises(CorruptWheelError, match=r"demo/__init__\.py: its bytes .* do not match "
                                                r"RECORD"):
        install(prefix, wheel)


def test_a_file_missing_from_record_is_tolerated_like_pip(tmp_path: Path, prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [WheelMember("demo/__init__.py", b"X = 1\n")])
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("demo/extra.py", b"Y = 2\n")
    install(prefix, wheel)
    assert (prefix / SITE / "demo/extra.py").read_bytes() == b"Y = 2\n"


def test_an_unknown_data_scheme_is_a_malformed_wheel(tmp_path: Path, prefix: Path) -> None:
    wheel = fake_wheel(tmp_path / "w", [WheelMember("demo-1.0.data/elsewhere/x", b"")])
    with pytest.raises(CorruptWheelError, match=r"not contained in a valid \.data subdirectory"):
        install(prefix, wheel)


def test_errors_share_the_root_exception() -> None:
    assert issubclass(CorruptWheelError, BuilderError)
    assert issubclass(InstallConflictError, BuilderError)


def test_an_unparsable_record_row_is_tolerated_like_pip(tmp_path: Path, prefix: Path) -> None:
    # pip reads RECORD with csv and never checks hashes; a row it cannot parse is not checked
    wheel = fake_wheel(tmp_path / "w", [WheelMember("demo/__init__.py", b"X = 1\n")])
    with zipfile.ZipFile(wheel) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    record = members["demo-1.0.dist-info/RECORD"].replace(
        b"demo/__init__.py,sha256=", b"demo/__init__.py,nohash").replace(b"\n", b",extra\n", 1)
    members["demo-1.0.dist-info/RECORD"] = record
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    install(prefix, wheel)
    assert (prefix / SITE / "demo/__init__.py").read_bytes() == b"X = 1\n"


def test_the_cli_prints_an_install_error_without_traceback_and_exits_1(
        tmp_path: Path, prefix: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from builder.cli import main as cli

    first = fake_wheel(tmp_path / "a", [WheelMember("x.py", b"A\n")], name="alpha")
    second = fake_wheel(tmp_path / "b", [WheelMember("x.py", b"B\n")], name="beta")

    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.set_defaults(handler=lambda _args: install(prefix, first, second))
        return p

    monkeypatch.setattr(cli, "_parser", parser)
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {second}: install conflict: beta 1.0 and alpha 1.0 both "
                          "install python/lib/python3.11/site-packages/x.py")
    assert "Traceback" not in err
