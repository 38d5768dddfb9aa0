"""plan_launch: the files, the manifest entry, Backend.AI's service definition (golden)."""

from __future__ import annotations

import dataclasses
import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from builder.errors import BuilderError
from builder.launch import LaunchInputs, WheelhouseSet, apply_launch, launch_digest, plan_launch
from builder.launch.jupyter import detect_server
from builder.launch.model import Flavor
from builder.launch.plan import launch_sources
from builder.launch.servicedef import literal, service_def, service_ports
from builder.recipe import parse_recipe_text

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
JUPYTER6 = parse_recipe_text((ROOT / "recipes/jupyter-6.toml").read_text(),
                             path="recipes/jupyter-6.toml")
INSTALLED = (("ipykernel", "6.29.5"), ("jupyter-server", "2.21.1"), ("notebook", "6.5.7"))


def schema(name: str) -> dict[str, object]:
    return dict(json.loads(files("builder.launch").joinpath(name).read_text()))


def inputs(tmp_path: Path, **changes: object) -> LaunchInputs:
    wheel = tmp_path / "ipykernel-6.29.5-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    fields: dict[str, object] = {
        "recipe": JUPYTER6, "arch": "x86_64", "python": "python/bin/python3.11",
        "installed": INSTALLED, "entry_is_python": True,
        "platform_tags": ("manylinux_2_17_x86_64", "manylinux2014_x86_64"),
        "wheelhouse": tuple(WheelhouseSet(python=v, requirements=(("ipykernel", "6.29.5",
                                                                    "a" * 64),),
                                          wheels=(wheel,)) for v in ("3.11", "3.12")),
    }
    fields.update(changes)
    return LaunchInputs(**fields)  # type: ignore[arg-type]


def test_the_plan_lays_out_the_launch_layer(tmp_path: Path) -> None:
    plan = plan_launch(inputs(tmp_path))
    modes = {f.path: f.executable for f in plan.files}
    assert modes == {
        "service-def.json": False,
        "app/bin/launch": True,
        "app/share/launch/kernels.py": False,
        "app/share/launch/launch.json": False,
        "app/share/launch/launch.py": False,
        "app/share/s6/cont-init.d/jupyter-6": True,
        "app/share/s6/services.d/jupyter-6/finish": True,
        "app/share/s6/services.d/jupyter-6/run": True,
        "app/share/wheelhouse/ipykernel-6.29.5-py3-none-any.whl": False,  # once for both
        "app/share/wheelhouse/requirements-py3.11.txt": False,
        "app/share/wheelhouse/requirements-py3.12.txt": False,
    }
    assert [f.path for f in plan.files] == sorted(modes)
    assert plan.info.to_dict() == {
        "launcher": "app/bin/launch", "service_def": "service-def.json",
        "s6_service": "app/share/s6/services.d/jupyter-6", "flavor": "notebook6",
        "image_python": "install", "wheelhouse": {"3.11": 1, "3.12": 1},
    }
    assert plan.info.service_ports == "jupyter-6:http:8888"
    requirements = next(f for f in plan.files if f.path.endswith("py3.12.txt"))
    assert requirements.data is not None
    assert f"ipykernel==6.29.5 --hash=sha256:{'a' * 64}" in requirements.data.decode()


def test_launch_json_says_which_server_and_how_to_configure_it(tmp_path: Path) -> None:
    plan = plan_launch(inputs(tmp_path))
    data = next(f.data for f in plan.files if f.path.endswith("launch.json"))
    assert data is not None
    launch = json.loads(data)
    jsonschema.validate(launch, schema("launch.schema.json"))
    assert launch["server"]["entry"] == "bin/jupyter-notebook"
    assert launch["server"]["jupyter"]["config_file"] == "jupyter_notebook_config.py"
    assert set(launch["server"]["jupyter"]["traits"].values()) >= {
        "NotebookApp.port", "NotebookApp.base_url", "NotebookApp.notebook_dir"}
    assert launch["kernels"]["python3"] == "image"
    bundle = JUPYTER6.kernels and dataclasses.replace(JUPYTER6.kernels, python3="bundle")
    data = next(f.data for f in plan_launch(inputs(tmp_path, recipe=dataclasses.replace(
        JUPYTER6, kernels=bundle))).files if f.path.endswith("launch.json"))
    assert data is not None and json.loads(data)["kernels"]["python3"] == "bundle"
    assert launch["kernels"]["wheelhouse"] == {"3.11": "requirements-py3.11.txt",
                                               "3.12": "requirements-py3.12.txt"}


def test_service_def_matches_the_golden_file_and_backend_ais_format() -> None:
    data = service_def(JUPYTER6)
    jsonschema.validate(data, schema("service-def.schema.json"))
    golden = GOLDEN / "service-def.json"
    assert json.dumps(data, sort_keys=True, indent=2) + "\n" == golden.read_text()
    interpolated = [part.format(ports=[30123]) for part in data["command"]]  # as Backend.AI
    assert interpolated == ["/opt/apps/jupyter-6/bin/launch", "--port", "30123",
                            "--platform-auth", "--allow-root"]
    # the base URL the command pins is the one url_template ends in; users cannot move it
    assert data["default_arguments"] == {"--base-url": "/"}
    assert data["url_template"] == "{protocol}://{host}:{port}/tree"
    assert "--base-url" not in data["allowed_arguments"]


@pytest.mark.parametrize(("line", "where"), [
    ('env = { OPTS = "{\\"a\\": 1}" }', "r.toml: service.env.OPTS"),
    ('env = { OPTS = "}" }', "r.toml: service.env.OPTS"),
])
def test_braces_backend_ais_interpolator_cannot_carry_are_refused(line: str, where: str) -> None:
    recipe = parse_recipe_text(
        (ROOT / "recipes/jupyter-6.toml").read_text().replace(
            'url_template = "/tree"', f'url_template = "/tree"\n{line}'),
        path="r.toml")
    with pytest.raises(BuilderError, match=r"has a brace, which Backend\.AI's service-def "
                       r"interpolator reads as a template variable") as caught:
        service_def(recipe)
    assert caught.value.where == where


def test_a_brace_in_url_template_is_refused() -> None:
    recipe = parse_recipe_text((ROOT / "recipes/jupyter-6.toml").read_text().replace(
        'url_template = "/tree"', 'url_template = "/tree/{x}"'), path="r.toml")
    with pytest.raises(BuilderError, match="has a brace") as caught:
        service_def(recipe)
    assert caught.value.where == "r.toml: service.url_template"
    assert literal("/opt/apps/x", where="w") == "/opt/apps/x"


@pytest.mark.parametrize("port", [80, 2000, 7681, 65535])
def test_ports_backend_ai_reserves_are_refused(port: int) -> None:
    recipe = parse_recipe_text((ROOT / "recipes/jupyter-6.toml").read_text().replace(
        "port = 8888", f"port = {port}"), path="r.toml")
    with pytest.raises(BuilderError, match=f"service.port {port} cannot be a Backend.AI"):
        service_ports(recipe)


def test_the_server_flavor_follows_the_installed_versions() -> None:
    assert detect_server(INSTALLED, where="r").flavor is Flavor.NOTEBOOK6
    lab = (("ipykernel", "6.29.5"), ("jupyter-server", "2.21.1"), ("jupyterlab", "4.6.6"),
           ("notebook-shim", "0.2.4"))
    server = detect_server(lab, where="r")
    assert server.flavor is Flavor.JUPYTER_SERVER
    assert dict(server.traits)["token"] == "IdentityProvider.token"
    notebook7 = (("ipykernel", "6"), ("jupyter-server", "2.1"), ("notebook", "7.2.0"))
    assert detect_server(notebook7, where="r").flavor is Flavor.JUPYTER_SERVER
    with pytest.raises(BuilderError, match="needs ipykernel in the bundle"):
        detect_server((("notebook", "6.5.7"),), where="r")
    with pytest.raises(BuilderError, match=r"found: jupyter-server 1\.24"):
        detect_server((("ipykernel", "6"), ("jupyter-server", "1.24")), where="r")


def test_a_jupyter_service_must_run_a_python_console_script(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match=r"service.command\[0\] \(bin/jupyter-notebook\) is "
                       "not a Python console script"):
        plan_launch(inputs(tmp_path, entry_is_python=False))


def test_install_without_a_locked_wheelhouse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="the lock has no wheelhouse"):
        plan_launch(inputs(tmp_path, wheelhouse=()))


def test_apply_writes_modes_and_never_overwrites(tmp_path: Path) -> None:
    plan = plan_launch(inputs(tmp_path))
    bundle = tmp_path / "bundle"
    apply_launch(plan, bundle)
    assert (bundle / "app/bin/launch").stat().st_mode & 0o777 == 0o755
    assert (bundle / "service-def.json").stat().st_mode & 0o777 == 0o644
    assert (bundle / "app/share/wheelhouse/ipykernel-6.29.5-py3-none-any.whl").read_bytes() \
        == b"wheel"
    with pytest.raises(BuilderError, match="app/bin/launch already exists in the bundle"):
        apply_launch(plan, bundle)


def test_the_launch_layer_is_part_of_the_input_digest() -> None:
    first = launch_digest()
    assert first == launch_digest() and first.startswith("sha256:") and len(first) == 71


VSCODE = parse_recipe_text((ROOT / "recipes/tiny.toml").read_text().replace(
    'name = "tiny"', 'name = "vscode"') + """
[app.ui]
name = "VS Code"
accepted_env = ["GIT_AUTHOR_NAME"]

[service]
kind = "code-server"
command = ["bin/code-server"]
protocol = "http"
port = 8080
url_template = "/"
""", path="vscode.toml")


def code_server_plan(tmp_path: Path) -> dict[str, bytes]:
    plan = plan_launch(inputs(tmp_path, recipe=VSCODE, installed=(), entry_is_python=False,
                              wheelhouse=()))
    assert plan.info.flavor is None and plan.info.image_python == "off"
    assert plan.info.service_ports == "vscode:http:8080"
    return {f.path: f.data or b"" for f in plan.files}


def test_a_code_server_service_ships_its_launcher_mode(tmp_path: Path) -> None:
    planned = code_server_plan(tmp_path)
    assert sorted(planned) == [
        "app/bin/launch", "app/share/launch/codeserver.py", "app/share/launch/launch.json",
        "app/share/launch/launch.py", "app/share/s6/cont-init.d/vscode",
        "app/share/s6/services.d/vscode/finish", "app/share/s6/services.d/vscode/run",
        "service-def.json"]
    assert planned["app/share/launch/codeserver.py"] == \
        files("builder.launch").joinpath("launcher_codeserver.py").read_bytes()
    launch = json.loads(planned["app/share/launch/launch.json"])
    jsonschema.validate(launch, schema("launch.schema.json"))
    assert launch["kind"] == "code-server" and launch["port"] == 8080
    assert launch["server"] == {"entry": "bin/code-server", "python_script": False, "args": []}
    assert launch["kernels"]["image_python"] == "off"
    run = planned["app/share/s6/services.d/vscode/run"]
    assert b"unless PASSWORD/HASHED_PASSWORD is set" in run
    assert b"--port 8888" in run, "Kubeflow's port under s6, whatever the launcher's default"


def test_code_server_service_def_matches_the_golden_file(tmp_path: Path) -> None:
    data = json.loads(code_server_plan(tmp_path)["service-def.json"])
    jsonschema.validate(data, schema("service-def.schema.json"))
    golden = GOLDEN / "service-def-code-server.json"
    assert json.dumps(data, sort_keys=True, indent=2) + "\n" == golden.read_text()
    # as Backend.AI's kernel runner builds it: command, then default_arguments updated with
    # the user's allowed arguments (name, value), then interpolation
    user = {"--auth": "password"}
    assert set(user) <= set(data["allowed_arguments"])
    argv = [*data["command"]]
    for name, value in {**data["default_arguments"], **user}.items():
        argv += [name, value]
    assert [part.format(ports=[30123]) for part in argv] == [
        "/opt/apps/vscode/bin/launch", "--port", "30123", "--ip", "0.0.0.0", "--platform-auth",
        "--allow-root", "--auth", "password"]
    assert data["allowed_envs"] == ["GIT_AUTHOR_NAME", "HASHED_PASSWORD", "PASSWORD"]


def test_the_digest_covers_every_shipped_file() -> None:
    assert {"launcher.py", "launcher_codeserver.py", "node-env.js", "scripts.py",
            "launch.schema.json"} <= set(launch_sources())
