"""The check plan of a fabricated tree, and running it: imports in a child interpreter, check
commands, a service that dies at once (no server is started here), writes into the tree."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path, PurePosixPath

import pytest
from factories import demo_recipe

from builder.check import CheckPlan, plan_checks, run_checks
from builder.check.model import CommandCheck, ImportTarget, ServiceCheck, SkippedModule
from builder.check.modules import BUILTIN_SKIPS
from builder.check.run import import_failure, resolve_command
from builder.check.tree import changes, moved, render_changes
from builder.errors import BuilderError, InternalError
from builder.recipe import parse_recipe_text
from builder.treewatch import snapshot

SITE = PurePosixPath("python/lib/python3.11/site-packages")
PY = "python/bin/python3.11"
SERVICE = '[service]\ncommand = ["bin/x"]\nurl_template = "/tree"\n{extra}'


def recipe(tail: str = ""):  # type: ignore[no-untyped-def]
    return parse_recipe_text(demo_recipe(tail=tail), path="r.toml")


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def tree(tmp_path: Path, *, python: str | None = None) -> Path:
    """A bundle root with two distributions, a service-def and the host's Python (or a fake)."""
    root = tmp_path / "bundle"
    site = root / "app" / SITE
    write(site / "pyjokes-0.8.3.dist-info/RECORD",
          "pyjokes/__init__.py,sha256=x,1\npyjokes-0.8.3.dist-info/RECORD,,\n"
          "../../../bin/pyjoke,sha256=y,2\n")
    write(site / "Jupyter_Core-5.0.dist-info/RECORD", "jupyter.py,,\njupyter_core/__init__.py,,\n"
          "tests/__init__.py,,\n")
    (site / "broken-1.0.dist-info").mkdir()  # no RECORD: not an installed distribution
    write(root / "service-def.json", json.dumps({
        "command": ["/opt/apps/demo/bin/launch", "--port", "{ports[0]}", "--allow-root"],
        "env": {"B": "x", "A": "1"}, "url_template": "{protocol}://{host}:{port}/tree",
        "default_arguments": {"--base-url": "/", "--flag": None, "--two": ["a", "b"]}}))
    interpreter = root / "app" / PY
    interpreter.parent.mkdir(parents=True)
    if python is None:
        interpreter.symlink_to(os.path.realpath(sys.executable))
    else:
        write(interpreter, python, 0o755)
    return root


def plan_of(root: Path, tail: str = "") -> CheckPlan:
    return plan_checks(recipe(tail), bundle_root=root, python=PY, site_packages=SITE)


def test_plan_of_a_tree(tmp_path: Path) -> None:
    root = tree(tmp_path)
    plan = plan_of(root, SERVICE.format(extra="") + '[checks]\nimport_skip = ["jupyter", "x"]\n'
                   'commands = [["pyjoke"], ["bin/x", "--v"]]\ntimeout = 9\n')
    assert plan == CheckPlan(
        recipe_path="r.toml", final_root="/opt/apps/demo", python=PY,
        path=("bin", "python/bin"),
        imports=(ImportTarget(module="jupyter_core", distributions=("jupyter-core 5.0",)),
                 ImportTarget(module="pyjokes", distributions=("pyjokes 0.8.3",))),
        skipped=(SkippedModule(module="jupyter", distributions=("jupyter-core 5.0",),
                               reason="checks.import_skip"),
                 SkippedModule(module="tests", distributions=("jupyter-core 5.0",),
                               reason=BUILTIN_SKIPS["tests"])),
        unused_skips=("x",),
        commands=(CommandCheck(index=0, argv=("pyjoke",)),
                  CommandCheck(index=1, argv=("bin/x", "--v"))),
        service=ServiceCheck(command=("/opt/apps/demo/bin/launch", "--port", "{ports[0]}",
                                      "--allow-root", "--base-url", "/", "--flag", "--two", "a",
                                      "b"),
                             env=(("A", "1"), ("B", "x")), url_path="/tree", launcher=True),
        service_note=None, timeout=9)


@pytest.mark.parametrize(("tail", "note"), [
    ("", None),
    (SERVICE.format(extra='protocol = "tcp"\n'), "not checked (protocol tcp: no HTTP to ask)"),
    (SERVICE.format(extra="") + "[checks]\nservice = false\n",
     "not checked (checks.service = false)"),
])
def test_services_not_checked_say_why(tmp_path: Path, tail: str, note: str | None) -> None:
    plan = plan_of(tree(tmp_path), tail)
    assert plan.service is None and plan.service_note == note


def test_imports_off_plans_no_imports(tmp_path: Path) -> None:
    plan = plan_of(tree(tmp_path), "[checks]\nimports = false\n")
    assert plan.imports == () and plan.skipped == ()


def test_a_missing_service_def_is_a_bug(tmp_path: Path) -> None:
    root = tree(tmp_path)
    (root / "service-def.json").unlink()
    with pytest.raises(InternalError, match=r"service-def\.json is missing or malformed"):
        plan_of(root, SERVICE.format(extra=""))


def test_an_empty_service_command_is_refused(tmp_path: Path) -> None:
    root = tree(tmp_path)
    write(root / "service-def.json", json.dumps(
        {"command": [], "env": {}, "url_template": "{protocol}://{host}:{port}/"}))
    with pytest.raises(BuilderError) as info:
        plan_of(root, SERVICE.format(extra=""))
    assert str(info.value) == f"{root}/service-def.json: service-def.json: the command is empty"


def plan_with(**changes: object) -> CheckPlan:
    base = CheckPlan(recipe_path="r.toml", final_root="/opt/apps/demo", python=PY,
                     path=("bin", "python/bin"), imports=(), skipped=(), unused_skips=(),
                     commands=(), service=None, service_note=None, timeout=20)
    return CheckPlan(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})  # type: ignore[arg-type]


def imports(*modules: str) -> tuple[ImportTarget, ...]:
    return tuple(ImportTarget(module=m, distributions=(f"d-{m} 1",)) for m in modules)


def test_imports_run_in_the_bundles_python_and_report_each_failure(tmp_path: Path) -> None:
    root = tree(tmp_path)
    log: list[str] = []
    plan = plan_with(imports=imports("json", "no_such_module_here", "zz_missing"))
    with pytest.raises(BuilderError) as info:
        run_checks(plan, bundle_root=root, source_date_epoch=0, scratch=tmp_path, log=log.append)
    text = str(info.value)
    assert text.startswith("r.toml: checks.imports: import check: 2 modules of 3 do not import "
                           "in the bundle's Python (python/bin/python3.11 -I):\n"
                           "  no_such_module_here (from d-no_such_module_here 1):\n")
    assert "    | ModuleNotFoundError: No module named 'no_such_module_here'\n" in text
    assert "  zz_missing (from d-zz_missing 1):\n" in text
    assert text.endswith('checks.import_skip = ["no_such_module_here", "zz_missing"]')
    assert root.is_dir() and not root.with_name("bundle.checking").exists()


def python_with(modules: Path) -> str:
    """A fake bundle python: the host's, with ``modules`` importable (``-I`` drops PYTHONPATH)."""
    return (f"#!/bin/sh\nshift\nshift\nexec {os.path.realpath(sys.executable)} -I -B -c "
            f"'import runpy, sys; sys.path.insert(0, \"{modules}\"); sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name=\"__main__\")' \"$@\"\n")


def test_the_checks_homes_are_made_in_the_scratch_directory(tmp_path: Path) -> None:
    """The build passes its staging directory: a build killed with SIGKILL leaves the checks'
    HOMEs there, where the next run collects them (not in TMPDIR, where nothing would)."""
    stage, other = tmp_path / "stage", tmp_path / "other"
    stage.mkdir()
    other.mkdir()
    modules = tmp_path / "mods"
    write(modules / "home_probe.py", "import os\nhome = os.environ['HOME']\n"
          f"if os.path.dirname(home) != {str(stage)!r}:\n    raise ImportError(home)\n")
    root = tree(tmp_path, python=python_with(modules))
    write(root / "app/bin/home-in", '#!/bin/sh\n[ "$(dirname "$HOME")" = "$1" ]\n', 0o755)
    report = run_checks(plan_with(imports=imports("home_probe"),
                                  commands=commands(("home-in", str(stage)))),
                        bundle_root=root, source_date_epoch=0, scratch=stage,
                        log=lambda _: None)
    assert [r.name for r in report.results] == ["imports", "command 1"]
    assert list(stage.iterdir()) == []  # and removed afterwards
    with pytest.raises(BuilderError, match="home_probe"):  # the probe can tell
        run_checks(plan_with(imports=imports("home_probe")), bundle_root=root,
                   source_date_epoch=0, scratch=other, log=lambda _: None)
    with pytest.raises(BuilderError, match="check command 1 failed"):
        run_checks(plan_with(commands=commands(("home-in", str(stage)))), bundle_root=root,
                   source_date_epoch=0, scratch=other, log=lambda _: None)


def test_a_module_that_fails_only_after_others_is_tried_alone(tmp_path: Path) -> None:
    """One child imports everything; what failed there is retried alone, and only what fails
    alone fails the check (setuptools' distutils shim after another module's distutils)."""
    modules = tmp_path / "mods"
    write(modules / "a_first.py", "import sys\nsys.modules['poison'] = sys\n")
    write(modules / "b_second.py", "import sys\nif 'poison' in sys.modules:\n"
          "    raise ImportError('a_first came first')\n")
    write(modules / "c_broken.py", "raise ImportError('broken for good')\n")
    root = tree(tmp_path, python=python_with(modules))
    log: list[str] = []
    report = run_checks(plan_with(imports=imports("a_first", "b_second")), bundle_root=root,
                        source_date_epoch=0, scratch=tmp_path, log=log.append)
    assert report.results[0].detail == ("2 modules of 2 distributions import; b_second only "
                                        "alone (not after the others)")
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(imports=imports("a_first", "b_second", "c_broken")),
                   bundle_root=root, source_date_epoch=0, scratch=tmp_path, log=log.append)
    assert "1 module of 3 does not import" in info.value.what
    assert "c_broken (from d-c_broken 1)" in info.value.what
    assert "b_second" not in info.value.what


def test_passing_imports_are_logged_with_their_time(tmp_path: Path) -> None:
    root = tree(tmp_path)
    log: list[str] = []
    plan = plan_with(imports=imports("json", "email"), unused_skips=("nope",),
                     skipped=(SkippedModule(module="tests", distributions=("x 1",), reason="r"),))
    report = run_checks(plan, bundle_root=root, source_date_epoch=0, scratch=tmp_path,
                        log=log.append)
    assert [r.name for r in report.results] == ["imports"]
    assert log[0] == "note: checks.import_skip: nope matches no installed module"
    assert re.fullmatch(r"check imports: 2 modules of 2 distributions import, 1 skipped "
                        r"\(\d+\.\d s\)", log[1])


def test_import_failure_message_and_the_pkg_resources_hint() -> None:
    plan = plan_with(imports=imports("tensorboard", "ok"))
    error = import_failure(plan, {"tensorboard": [
        'File "x.py", line 1', "ModuleNotFoundError: No module named 'pkg_resources'"]})
    assert str(error) == (
        "r.toml: checks.imports: import check: 1 module of 2 does not import in the bundle's "
        "Python (python/bin/python3.11 -I):\n"
        "  tensorboard (from d-tensorboard 1):\n"
        '    | File "x.py", line 1\n'
        "    | ModuleNotFoundError: No module named 'pkg_resources'\n"
        '  hint: pkg_resources is gone from setuptools >= 81: add "setuptools<81" to '
        "packages.requirements (and re-lock); or fix the packages (a missing dependency: add it "
        'to packages.requirements), or leave the module out on purpose: checks.import_skip = '
        '["tensorboard"]')


CRASHING_PYTHON = """#!/bin/sh
echo "builder-check: importing fine" >&2
echo "builder-check: importing crashy" >&2
kill -SEGV $$
"""


def test_an_import_that_kills_the_interpreter_is_named(tmp_path: Path) -> None:
    root = tree(tmp_path, python=CRASHING_PYTHON)
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(imports=imports("fine", "crashy")), bundle_root=root,
                   source_date_epoch=0, scratch=tmp_path, log=lambda _: None)
    text = str(info.value)
    assert text.startswith("r.toml: checks.imports: import check (while importing crashy) was "
                           "killed by signal 11: ")
    assert text.endswith('hint: leave the module out with checks.import_skip = ["crashy"] if it '
                         "cannot be imported in a headless build, or raise checks.timeout")


def test_an_interpreter_that_does_not_report_fails_the_check(tmp_path: Path) -> None:
    root = tree(tmp_path, python="#!/bin/sh\necho no report\n")
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(imports=imports("json")), bundle_root=root, source_date_epoch=0,
                   scratch=tmp_path, log=lambda _: None)
    assert str(info.value).startswith("r.toml: checks.imports: import check failed (exit code 0)")
    assert "  | no report" in str(info.value)
    assert str(info.value).endswith("hint: raise checks.timeout if the bundle is just slow")


def test_a_report_from_an_interpreter_that_then_fails_is_not_trusted(tmp_path: Path) -> None:
    # argv: python -I -B check.py modules.json failed.json
    root = tree(tmp_path, python='#!/bin/sh\necho "{}" > "$5"\necho late failure\nexit 3\n')
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(imports=imports("json")), bundle_root=root, source_date_epoch=0,
                   scratch=tmp_path, log=lambda _: None)
    assert str(info.value).startswith("r.toml: checks.imports: import check failed (exit code 3)")
    assert "  | late failure" in str(info.value)


def command_tree(tmp_path: Path) -> Path:
    root = tree(tmp_path)
    write(root / "app/bin/ok", "#!/bin/sh\nexit 0\n", 0o755)
    write(root / "app/bin/bad", "#!/bin/sh\necho one; echo two >&2; exit 2\n", 0o755)
    write(root / "app/bin/where", '#!/bin/sh\n[ "$PWD" = "$HOME" ] && [ ! -e ok ]\n', 0o755)
    write(root / "app/bin/writer", '#!/bin/sh\ntouch "$(dirname "$0")/../oops"\n', 0o755)
    write(root / "app/share/data.txt", "not a program\n")
    return root


def commands(*argvs: tuple[str, ...]) -> tuple[CommandCheck, ...]:
    return tuple(CommandCheck(index=i, argv=a) for i, a in enumerate(argvs))


def test_check_commands_run_from_home_with_the_bundle_on_path(tmp_path: Path) -> None:
    root = command_tree(tmp_path)
    log: list[str] = []
    report = run_checks(plan_with(commands=commands(("ok",), ("bin/ok", "x"), ("where",))),
                        bundle_root=root, source_date_epoch=0, scratch=tmp_path, log=log.append)
    assert [r.name for r in report.results] == ["command 1", "command 2", "command 3"]
    assert re.fullmatch(r"check command 2: bin/ok x \(\d+\.\d s\)", log[1])


def test_a_failing_check_command(tmp_path: Path) -> None:
    root = command_tree(tmp_path)
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(commands=commands(("ok",), ("bad", "--flag"))), bundle_root=root,
                   source_date_epoch=0, scratch=tmp_path, log=lambda _: None)
    assert str(info.value) == (
        "r.toml: checks.commands[1]: check command 2 failed (exit code 2): bad --flag\n"
        "  | one\n  | two\n"
        "  hint: a check command must exit 0 in the finished bundle (run offline, from a "
        "temporary HOME, with app/bin and app/python/bin first on PATH)")


def test_a_check_command_past_the_bound(tmp_path: Path) -> None:
    root = command_tree(tmp_path)
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(commands=commands(("sh", "-c", "echo begun; sleep 20")), timeout=1),
                   bundle_root=root, source_date_epoch=0, scratch=tmp_path, log=lambda _: None)
    assert str(info.value).startswith("r.toml: checks.commands[0]: check command 1 did not "
                                      "finish within 1 s: sh -c echo begun; sleep 20\n  | begun")


@pytest.mark.parametrize(("argv", "message"), [
    (("no-such-tool-here",), "r.toml: checks.commands[0]: check command 1: no-such-tool-here "
     "is not on the bundle's PATH (app/bin, app/python/bin, then /usr/local/bin, /usr/bin, /bin)"
     "\n  hint: name a console script the bundle exposes, or a path relative to the app root "
     "(e.g. python/bin/python3)"),
    (("bin/missing",), "r.toml: checks.commands[0]: check command 1: bin/missing is not an "
     "executable file of the app\n  hint: a path is relative to the app root (e.g. bin/jupyter)"),
    (("share/data.txt",), "r.toml: checks.commands[0]: check command 1: share/data.txt is not "
     "an executable file of the app\n  hint: a path is relative to the app root "
     "(e.g. bin/jupyter)"),
    (("share",), "r.toml: checks.commands[0]: check command 1: share is not on the bundle's "
     "PATH (app/bin, app/python/bin, then /usr/local/bin, /usr/bin, /bin)\n  hint: name a "
     "console script the bundle exposes, or a path relative to the app root "
     "(e.g. python/bin/python3)"),
])
def test_check_commands_that_cannot_be_found(tmp_path: Path, argv: tuple[str, ...],
                                              message: str) -> None:
    app = command_tree(tmp_path) / "app"
    with pytest.raises(BuilderError) as info:
        resolve_command(CommandCheck(index=0, argv=argv), app=app,
                        path=(app / "bin", app / "python/bin"), where="r.toml: checks.commands[0]")
    assert str(info.value) == message


def test_resolved_commands(tmp_path: Path) -> None:
    app = command_tree(tmp_path) / "app"
    path = (app / "bin", app / "python/bin")
    assert resolve_command(CommandCheck(index=0, argv=("ok", "a")), app=app, path=path,
                           where="w") == [str(app / "bin/ok"), "a"]
    assert resolve_command(CommandCheck(index=0, argv=("bin/bad",)), app=app, path=path,
                           where="w") == [str(app / "bin/bad")]
    assert resolve_command(CommandCheck(index=0, argv=("sh",)), app=app, path=path,
                           where="w")[0] in ("/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh")


def test_a_check_that_writes_into_the_tree_fails_the_build(tmp_path: Path) -> None:
    root = command_tree(tmp_path)
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(commands=commands(("ok",), ("writer",))), bundle_root=root,
                   source_date_epoch=0, scratch=tmp_path, log=lambda _: None)
    assert str(info.value) == (
        "r.toml: checks: check command 2 wrote into the bundle (it is mounted read-only at run "
        "time):\n  changed app\n  added app/oops\n"
        "  hint: the app must write only to $HOME, $TMPDIR or directories given by the "
        "environment; fix the command, or the package that writes into its own tree")
    assert (root / "app/oops").exists()  # the tree is back where it was, as the check left it


def test_bytecode_caches_written_by_a_check_are_undone_and_noted(tmp_path: Path) -> None:
    root = command_tree(tmp_path)
    write(root / "app/share/launch/mode.py", "")
    write(root / "app/lib/__pycache__/old.cpython-311.pyc", "")
    for directory in ("app/share/launch", "app/lib/__pycache__"):
        os.utime(root / directory, ns=(10**9, 10**9))
    write(root / "app/bin/compiler", '#!/bin/sh\napp="$(dirname "$0")/.."\n'
          'mkdir "$app/share/launch/__pycache__"\n'
          'touch "$app/share/launch/__pycache__/mode.cpython-311.pyc"\n'
          'touch "$app/lib/__pycache__/new.cpython-311.pyc"\n', 0o755)
    before = snapshot(root)
    log: list[str] = []
    run_checks(plan_with(commands=commands(("compiler",))), bundle_root=root,
               source_date_epoch=0, scratch=tmp_path, log=log.append)
    assert changes(before, snapshot(root)) == ()
    assert log[1] == ("note: check command 1 wrote Python bytecode into the tree, removed (on "
                      "the read-only mount it is compiled at every start): "
                      "app/lib/__pycache__/new.cpython-311.pyc, "
                      "app/share/launch/__pycache__/mode.cpython-311.pyc")


def test_only_bytecode_is_undone(tmp_path: Path) -> None:
    root = command_tree(tmp_path)
    write(root / "app/bin/mixed", '#!/bin/sh\napp="$(dirname "$0")/.."\n'
          'mkdir "$app/__pycache__"\ntouch "$app/__pycache__/x.pyc" "$app/__pycache__/x.txt"\n',
          0o755)
    with pytest.raises(BuilderError) as info:
        run_checks(plan_with(commands=commands(("mixed",))), bundle_root=root,
                   source_date_epoch=0, scratch=tmp_path, log=lambda _: None)
    assert "\n  changed app\n  added app/__pycache__\n  added app/__pycache__/x.txt\n" in str(
        info.value)


def test_the_service_runs_from_the_checked_tree_on_a_loopback_port(tmp_path: Path) -> None:
    root = tree(tmp_path)
    write(root / "app/bin/launch", '#!/bin/sh\necho "$0 $* A=$A B=$B HOME=$HOME"\nexit 4\n',
          0o755)
    plan = plan_of(root, SERVICE.format(extra="") + "[checks]\nimports = false\ntimeout = 10\n")
    stage = tmp_path / "stage"
    stage.mkdir()
    with pytest.raises(BuilderError) as info:
        run_checks(plan, bundle_root=root, source_date_epoch=0, scratch=stage,
                   log=lambda _: None)
    text = str(info.value)
    match = re.fullmatch(
        r"r.toml: service: service check: the service exited with code 4 before answering at "
        r"http://127.0.0.1:(\d+)/tree: /opt/apps/demo/bin/launch --port \{ports\[0\]\} "
        r"--allow-root --base-url / --flag --two a b\n"
        r"  \| (\S+)/bundle.checking/app/bin/launch --port (\d+) --allow-root --base-url / "
        r"--flag --two a b --ip 127.0.0.1 A=1 B=x HOME=(\S+)\n"
        r"  hint: start it by hand to see why: /opt/apps/demo/bin/launch --port 8888 \(the "
        r"output above is the service's own\)", text)
    assert match, text
    assert match[1] == match[3] and match[2] == str(tmp_path)
    assert not match[4].startswith(str(root))
    # the HOME was made in the scratch directory (the build's stage) and removed
    assert Path(match[4]).parent == stage and not Path(match[4]).exists()


def test_the_tree_moves_back_whatever_happens(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    (root / "app").mkdir(parents=True)
    with pytest.raises(RuntimeError), moved(root) as checked:
        assert checked == tmp_path / "bundle.checking" and not root.exists()
        raise RuntimeError
    assert (root / "app").is_dir() and not (tmp_path / "bundle.checking").exists()
    (tmp_path / "bundle.checking").mkdir()
    with pytest.raises(InternalError, match=r"bundle\.checking exists before the checks"), \
            moved(root):
        pass
    assert root.is_dir()


def test_snapshot_changes(tmp_path: Path) -> None:
    write(tmp_path / "a/keep", "1")
    write(tmp_path / "a/edit", "1")
    write(tmp_path / "gone", "1")
    (tmp_path / "link").symlink_to("a/keep")
    before = snapshot(tmp_path)
    assert sorted(before.entries) == ["a", "a/edit", "a/keep", "gone", "link"]
    os.utime(tmp_path / "a", ns=(1, 1))
    (tmp_path / "a/edit").write_text("22")
    (tmp_path / "gone").unlink()
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("a/edit")
    write(tmp_path / "new", "")
    lines = changes(before, snapshot(tmp_path))
    assert lines == ("changed a", "changed a/edit", "removed gone", "changed link", "added new")
    assert render_changes(lines, shown=2) == "  changed a\n  changed a/edit\n  ... and 3 more"
    assert changes(before, before) == ()
