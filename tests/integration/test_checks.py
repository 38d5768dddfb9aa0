"""Build-time checks for real: servers on loopback asked over HTTP (fast), and `builder build`
on recipes whose app does not import, whose check command fails, whose service never answers
(a local PEP 503 index of wheels written here), and on the shipped recipes (slow)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from builder_run import run_builder
from procs import gone

from builder.check import plan_checks, run_checks
from builder.errors import BuilderError
from builder.recipe import parse_recipe_text

pytestmark = pytest.mark.integration

# --- the service check against real servers (seconds) --------------------------------------

RECIPE = """\
format_version = 1

[app]
name = "{name}"
version = "1.0"
summary = "checks test"

[runtime]
python = "3.11"
pbs_release = "20240107"

[packages]
requirements = [{requirements}]
index_url = "{index}"

[targets]
triples = ["x86_64-unknown-linux-gnu"]
{tail}"""


def service_tree(tmp_path: Path, launch: str, *, url: str = "/") -> Path:
    """A bundle root whose bin/launch is ``launch`` (sh), started from service-def.json."""
    root = tmp_path / "bundle"
    script = root / "app" / "bin" / "launch"
    script.parent.mkdir(parents=True)
    script.write_text(launch)
    script.chmod(0o755)
    (root / "service-def.json").write_text(json.dumps({
        "command": ["/opt/apps/svc/bin/launch", "--port", "{ports[0]}", "--platform-auth",
                    "--allow-root"],
        "env": {}, "url_template": "{protocol}://{host}:{port}" + url}))
    return root


def service_plan(root: Path, *, timeout: int = 20):  # type: ignore[no-untyped-def]
    recipe = parse_recipe_text(RECIPE.format(
        name="svc", requirements='"x==1"', index="https://pypi.org/simple",
        tail=f'[service]\ncommand = ["bin/x"]\n[checks]\nimports = false\ntimeout = {timeout}\n'),
        path="svc.toml")
    return plan_checks(recipe, bundle_root=root, python="python/bin/python3.11",
                       site_packages=PurePosixPath("python/lib/python3.11/site-packages"))


# argv: --port N --platform-auth --allow-root --ip 127.0.0.1
HTTP_SERVER = f"""#!/bin/sh
[ "$4 $5 $6" = "--allow-root --ip 127.0.0.1" ] || {{ echo "unexpected arguments: $*"; exit 9; }}
exec {sys.executable} -m http.server "$2" --bind "$6" --directory "$HOME"
"""


def test_a_service_that_answers_is_timed(tmp_path: Path) -> None:
    root = service_tree(tmp_path, HTTP_SERVER)
    log: list[str] = []
    report = run_checks(service_plan(root), bundle_root=root, source_date_epoch=0, scratch=tmp_path,
                        log=log.append)
    assert [r.name for r in report.results] == ["service"]
    assert re.fullmatch(r"check service: http://127\.0\.0\.1:\d+/ answered HTTP 200 after "
                        r"\d+\.\d s \(\d+\.\d s\)", log[-1]), log


def test_a_service_that_never_answers_fails_at_the_bound_and_nothing_is_left(
        tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # ignores SIGTERM, and leaves a child in its group: both must be gone afterwards
    never = (f"#!/bin/sh\ntrap '' TERM\nsleep 600 &\necho $$ $! > {pids}\necho listening soon\n"
             "while :; do sleep 0.2; done\n")
    root = service_tree(tmp_path, never)
    start = time.monotonic()
    with pytest.raises(BuilderError) as info:
        run_checks(service_plan(root, timeout=2), bundle_root=root, source_date_epoch=0,
                   scratch=tmp_path, log=lambda _: None)
    assert time.monotonic() - start < 2 + 5 + 5  # the bound, the grace period, slack
    text = str(info.value)
    assert re.match(r"svc\.toml: service: service check: no HTTP answer at "
                    r"http://127\.0\.0\.1:\d+/ within 2 s \(last: connection refused\): "
                    r"/opt/apps/svc/bin/launch --port \{ports\[0\]\} --platform-auth "
                    r"--allow-root\n  \| listening soon\n  hint: accepted are 2xx, 3xx, 401 and "
                    r"403; ", text), text
    for pid in map(int, pids.read_text().split()):
        assert gone(pid), pid


def test_a_service_answering_404_at_its_url_reports_the_answer(tmp_path: Path) -> None:
    root = service_tree(tmp_path, HTTP_SERVER, url="/no/such/page")
    with pytest.raises(BuilderError) as info:
        run_checks(service_plan(root, timeout=2), bundle_root=root, source_date_epoch=0,
                   scratch=tmp_path, log=lambda _: None)
    assert re.match(r"svc\.toml: service: service check: no HTTP answer at "
                    r"http://127\.0\.0\.1:\d+/no/such/page within 2 s \(last: HTTP 404\)",
                    str(info.value)), str(info.value)
    assert (root / "app/bin/launch").exists()  # the tree is back


# --- builds (a local index of fabricated wheels) ----------------------------------------------


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(directory: Path, name: str, files: dict[str, str],
                entry_points: str = "") -> Path:
    """A pure-Python wheel ``name``-1.0 with a correct RECORD (fixed timestamps)."""
    info = f"{name}-1.0.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" \
        "License: MIT\n"
    members[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n" \
        "Tag: py3-none-any\n"
    if entry_points:
        members[f"{info}/entry_points.txt"] = entry_points
    record = "".join(f"{path},{_record_hash(text.encode())},{len(text.encode())}\n"
                     for path, text in members.items()) + f"{info}/RECORD,,\n"
    members[f"{info}/RECORD"] = record
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in members.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return wheel


@pytest.fixture(scope="module")
def local_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PEP 503 index (file:// URL) of two small wheels: ``brokenapp`` needs pkg_resources
    (gone from setuptools >= 81, and not in the bundle), ``sleepyapp`` has a console script
    that prints its version or sleeps without ever serving."""
    root = tmp_path_factory.mktemp("index")
    wheels = root / "files"
    wheels.mkdir()
    built = [
        write_wheel(wheels, "brokenapp", {
            "brokenapp/__init__.py": "import pkg_resources\n"}),
        write_wheel(wheels, "sleepyapp", {
            "sleepyapp/__init__.py": (
                "import sys, time\n\ndef main():\n"
                "    if '--version' in sys.argv:\n"
                "        print('sleepyapp 1.0')\n        return 0\n"
                "    print('starting, never serving', flush=True)\n"
                "    time.sleep(600)\n")},
            entry_points="[console_scripts]\nsleepy = sleepyapp:main\n"),
    ]
    for wheel in built:
        project = root / "simple" / wheel.name.split("-")[0]
        project.mkdir(parents=True)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        (project / "index.html").write_text(
            f'<html><body><a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>'
            "</body></html>\n")
    return (root / "simple").as_uri()


def build_recipe(tmp_path: Path, text: str, *, cache: Path,
                 runtime: Path
                 ) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """Lock and build ``text`` (a recipe) in ``tmp_path``; (out dir, TMPDIR, finished build)."""
    recipe = tmp_path / "app.toml"
    recipe.write_text(text)
    locked = run_builder("lock", str(recipe), "--lock-dir", str(tmp_path / "lock"), cache=cache)
    assert locked.returncode == 0, locked.stderr
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    out.mkdir()
    scratch.mkdir()
    proc = run_builder("build", str(recipe), "--lock-dir", str(tmp_path / "lock"),
                       "--python-from", str(runtime), "--out", str(out), cache=cache,
                       env={"TMPDIR": str(scratch)})
    return out, scratch, proc


@pytest.mark.slow
def test_an_app_that_does_not_import_fails_the_build_and_leaves_nothing(
        tmp_path: Path, local_index: str, builder_cache: Path, runtime_archive: Path) -> None:
    out, scratch, proc = build_recipe(
        tmp_path, RECIPE.format(name="broken", requirements='"brokenapp==1.0"',
                                index=local_index, tail=""),
        cache=builder_cache, runtime=runtime_archive)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert f"{tmp_path}/app.toml: checks.imports: import check: 1 module of " in err
    assert "  brokenapp (from brokenapp 1.0):\n" in err
    assert "    | ModuleNotFoundError: No module named 'pkg_resources'\n" in err
    assert 'hint: pkg_resources is gone from setuptools >= 81: add "setuptools<81"' in err
    assert list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []  # no staging directory, no sandbox home left


@pytest.mark.slow
def test_a_failing_check_command_fails_the_build(tmp_path: Path, local_index: str,
                                                 builder_cache: Path,
                                                 runtime_archive: Path) -> None:
    out, scratch, proc = build_recipe(
        tmp_path, RECIPE.format(
            name="sleepy-cmd", requirements='"sleepyapp==1.0"', index=local_index,
            tail='[checks]\ncommands = [["sleepy", "--version"], '
                 '["sh", "-c", "echo about to fail; exit 3"]]\n'),
        cache=builder_cache, runtime=runtime_archive)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert re.search(r"check command 1: sleepy --version \(\d+\.\d s\)", err), err
    assert (f"{tmp_path}/app.toml: checks.commands[1]: check command 2 failed (exit code 3): "
            "sh -c echo about to fail; exit 3\n  | about to fail\n") in err
    assert list(out.iterdir()) == [] and list(scratch.iterdir()) == []


@pytest.mark.slow
def test_a_service_that_never_answers_fails_the_build(tmp_path: Path, local_index: str,
                                                      builder_cache: Path,
                                                      runtime_archive: Path) -> None:
    out, scratch, proc = build_recipe(
        tmp_path, RECIPE.format(
            name="sleepy", requirements='"sleepyapp==1.0"', index=local_index,
            tail='[service]\nkind = "command"\ncommand = ["bin/sleepy", "--port", "{port}"]\n'
                 '[checks]\ntimeout = 5\n'),
        cache=builder_cache, runtime=runtime_archive)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert re.search(r"check imports: \d+ modules? of \d+ distributions? import", err), err
    assert re.search(
        rf"{re.escape(str(tmp_path))}/app\.toml: service: service check: no HTTP answer at "
        r"http://127\.0\.0\.1:\d+/ within 5 s \(last: connection refused\): "
        r"/opt/apps/sleepy/bin/launch --port \{ports\[0\]\} --platform-auth --allow-root "
        r"--base-url /\n", err), err  # default_arguments appended, as Backend.AI does
    assert "  | starting, never serving" in err
    assert list(out.iterdir()) == [] and list(scratch.iterdir()) == []


# --- the shipped recipes ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny", "jupyter-6", "tensorboard"])
def test_shipped_recipes_pass_their_checks_and_log_the_times(
        name: str, tmp_path: Path, builder_cache: Path, runtime_archive: Path) -> None:
    proc = run_builder("build", f"recipes/{name}.toml", "--python-from", str(runtime_archive),
                       "--out", str(tmp_path), cache=builder_cache)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    imports = next(line for line in lines if line.startswith("check imports: "))
    assert re.fullmatch(r"check imports: \d+ modules? of \d+ distributions? import(, \d+ "
                        r"skipped)?(; [\w, ]+ only alone \(not after the others\))? "
                        r"\(\d+\.\d s\)", imports), imports
    passed = next(line for line in lines if line.startswith("checks passed"))
    assert lines.index(passed) < lines.index("archiving")
    if name != "tiny":  # the service, from its service definition, answers at its URL
        path = {"jupyter-6": "/tree", "tensorboard": "/"}[name]
        service = next(line for line in lines if line.startswith("check service: "))
        assert re.fullmatch(rf"check service: http://127\.0\.0\.1:\d+{path} answered HTTP 200 "
                            r"after \d+\.\d s \(\d+\.\d s\)", service), service
        command = next(line for line in lines if line.startswith("check command"))
        assert "--version" in command or "--version_tb" in command, command
    assert Path(proc.stdout.strip()).is_file()
    print("\n".join(line for line in lines if line.startswith("check")), file=sys.stderr)
