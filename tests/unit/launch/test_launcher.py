"""The launcher's pure parts (builder.launch.launcher runs inside bundles; tested here as-is)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.launch import launcher as rt
from builder.launch import launcher_codeserver as cs
from builder.launch import launcher_kernels as rk

IMAGE = {
    "PATH": "/usr/bin:/bin", "HOME": "/home/u", "PYTHONPATH": "/junk", "PYTHONHOME": "/junk",
    "PYTHONUSERBASE": "/junk", "VIRTUAL_ENV": "/venv", "JUPYTER_PATH": "/image/share/jupyter",
    "JUPYTER_TOKEN": "t", "NB_PREFIX": "/nb/x",
}


@pytest.mark.parametrize("module", [rt, cs, rk], ids=["launch.py", "codeserver.py", "kernels.py"])
def test_runtime_is_stdlib_only_and_runs_on_old_pythons(module: object) -> None:
    """It is shipped into bundles whose Python may be 3.8: no builder imports, and every
    annotation stays unevaluated."""
    source = Path(str(getattr(module, "__file__", ""))).read_text()
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
    assert "from __future__ import annotations" in source
    ast.parse(source, feature_version=(3, 8))


def test_original_environment_puts_the_loader_variables_back() -> None:
    environ = {"PATH": "/bin", "BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH": "/cuda/lib",
               "BUILDER_LAUNCH_SAVED_LD_PRELOAD": "", rt.CHILD_ENV: "{}"}
    assert rt.original_environment(environ) == {"PATH": "/bin", "LD_LIBRARY_PATH": "/cuda/lib",
                                                "LD_PRELOAD": ""}


def test_server_environment_drops_the_leaks_and_points_jupyter_at_the_bundle() -> None:
    env = rt.server_environment({**IMAGE, "LD_LIBRARY_PATH": "/x", "PYTHONWARNINGS": "error"},
                                {"HOME": "/home/u", "JUPYTER_DATA_DIR": "/home/u/d"},
                                app_prefix="/opt/apps/a/python", recipe_env={"A": "1"})
    for leak in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS", "VIRTUAL_ENV",
                 "LD_LIBRARY_PATH", "JUPYTER_PATH"):
        assert leak not in env
    assert env["PYTHONNOUSERSITE"] == "1" and env["A"] == "1"
    assert env["JUPYTER_PLATFORM_DIRS"] == "1"
    assert env["XDG_CONFIG_DIRS"] == "/opt/apps/a/python/etc"  # no /etc/jupyter
    assert env["XDG_DATA_DIRS"] == "/opt/apps/a/python/share"  # no /usr/share/jupyter
    assert env["JUPYTER_TOKEN"] == "t" and env["JUPYTER_DATA_DIR"] == "/home/u/d"


def test_kernels_and_terminals_get_the_image_environment_back() -> None:
    image = {**IMAGE, "LD_LIBRARY_PATH": "/cuda/lib"}
    server = rt.server_environment(image, {"HOME": "/home/u"}, app_prefix="/p", recipe_env={})
    server["JUPYTER_CONFIG_PATH"] = "/tmp/run/config"
    server[rt.CHILD_ENV] = json.dumps(rt.child_delta(image, server))
    as_image = rt.apply_delta(server, json.loads(server[rt.CHILD_ENV]), "image")
    assert as_image == image
    as_bundle = rt.apply_delta(server, json.loads(server[rt.CHILD_ENV]), "bundle",
                               prepend=[("PYTHONPATH", "/extra")])
    for gone in (*rt.INTERNAL, "LD_LIBRARY_PATH", "VIRTUAL_ENV", "PYTHONHOME"):
        assert gone not in as_bundle
    assert as_bundle["PYTHONPATH"] == "/extra" and as_bundle["PYTHONNOUSERSITE"] == "1"


@pytest.mark.parametrize(("arg", "env", "expected"), [
    (None, {}, "/"),
    (None, {"JPY_BASE_USER_URL": "/user/ann"}, "/user/ann/"),
    (None, {"NB_PREFIX": "/notebook/ns/nb", "JPY_BASE_USER_URL": "/user/ann"}, "/notebook/ns/nb/"),
    ("//a//b", {"NB_PREFIX": "/notebook/ns/nb"}, "/a/b/"),
])
def test_base_url_comes_from_the_argument_then_the_platform(arg: str | None, env: dict[str, str],
                                                            expected: str) -> None:
    assert rt.choose_base_url(arg, env, "/") == expected


LAUNCH = {"name": "demo", "version": "1", "port": 8888, "base_url": "/"}


@pytest.mark.parametrize(("argv", "env", "message"), [
    ([], {"LAUNCH_PORT": "notaport"}, "$LAUNCH_PORT 'notaport' is not a TCP port"),
    ([], {"LAUNCH_PORT": "0"}, "$LAUNCH_PORT '0' is not a TCP port (a number from 1 to 65535)"),
    (["--port", "70000"], {}, "--port '70000' is not a TCP port"),
    ([], {"NB_PREFIX": "/notebook/ns/my notebook"}, "$NB_PREFIX '/notebook/ns/my notebook' is "
     "not a URL path (segment 'my notebook'); expected something like /notebook/NAMESPACE/NAME"),
    ([], {"NB_PREFIX": "/notebook/../admin"}, "$NB_PREFIX '/notebook/../admin' is not a URL"),
    (["--base-url", "/a?b=1"], {}, "--base-url '/a?b=1' is not a URL path"),
    ([], {"JPY_BASE_USER_URL": "/user/x#y"}, "$JPY_BASE_USER_URL '/user/x#y' is not a URL"),
    ([], {"LAUNCH_IP": "0.0.0.0:8888"}, "$LAUNCH_IP '0.0.0.0:8888' is not an IP address"),
    (["--ip", "-"], {}, "--ip '-' is not an IP address or host name"),
    (["--notebook-dir", "/nonexistent/x"], {}, "--notebook-dir /nonexistent/x: no such dir"),
    (["--no-such-option"], {}, "unrecognized arguments: --no-such-option"),
])
def test_configuration_errors_exit_78_and_say_what(argv: list[str], env: dict[str, str],
                                                   message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """EX_CONFIG, never argparse's 2: s6's finish script stops restarting on 78."""
    with pytest.raises(SystemExit) as info:
        rt.parse_args(argv, LAUNCH, env)
    assert info.value.code == rt.EXIT_CONFIG == 78
    assert message in capsys.readouterr().err


def test_good_addresses_and_prefixes_are_taken() -> None:
    args = rt.parse_args([], LAUNCH, {"LAUNCH_PORT": "9000", "LAUNCH_IP": "::1",
                                      "NB_PREFIX": "/notebook/kubeflow-user/my-nb_1.x~%41"})
    assert (args.port, args.ip, args.base_url) == (9000, "::1",
                                                   "/notebook/kubeflow-user/my-nb_1.x~%41/")
    args = rt.parse_args(["--port", "1", "--ip", "localhost"], LAUNCH, {"LAUNCH_PORT": "x"})
    assert (args.port, args.ip, args.base_url) == (1, "localhost", "/")


def test_jupyter_config_maps_settings_to_the_versions_traits() -> None:
    values = rt.config_values(ip="0.0.0.0", port=8888, base_url="/x'y/", root_dir="/h",
                              allow_root=False, platform_auth=True, env={}, kernels=["python3"],
                              terminal=["launch", "exec", "image", "--", "/bin/bash"],
                              cookie_secret_file="/h/.local/share/jupyter/a_cookie_secret")
    assert values["token"] == "" and values["allow_origin"] == "*"
    assert values["show_banner"] is False, "the Notebook 7 migration banner is off"
    assert values["cookie_secret_file"] == "/h/.local/share/jupyter/a_cookie_secret"
    traits = {key: f"App.{key}" for key in values}
    text = rt.jupyter_config(traits, values, title="demo 1")
    namespace: dict[str, object] = {}

    class Section(dict[str, object]):  # what traitlets' get_config() gives, minimally
        def __getattr__(self, name: str) -> object:
            return self.setdefault(name, Section())

        def __setattr__(self, name: str, value: object) -> None:
            self[name] = value

    config = Section()
    exec(compile(text, "config.py", "exec"), {"get_config": lambda: config}, namespace)
    assert config["App"] == values  # type: ignore[comparison-overlap]
    without_banner = {k: v for k, v in traits.items() if k != "show_banner"}
    assert "show_banner" not in rt.jupyter_config(without_banner, values, title="server 2"), \
        "a setting the server version does not have is left out"
    with_token = rt.config_values(ip="1", port=1, base_url="/", root_dir="/", allow_root=True,
                                  platform_auth=True, env={"JUPYTER_TOKEN": "s"}, kernels=[],
                                  terminal=[], cookie_secret_file="/s")
    assert "token" not in with_token, "JUPYTER_TOKEN is honoured by Jupyter itself"


def test_state_goes_to_home_or_to_a_private_temporary_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    state = rt.make_state({"HOME": str(home), "TMPDIR": str(tmp_path)}, "demo")
    assert state.home == str(home) and not state.home_is_temporary
    env = rt.state_environment({}, state)
    assert env["JUPYTER_CONFIG_DIR"] == str(home / ".jupyter")
    assert env["IPYTHONDIR"] == str(home / ".ipython")
    assert env["JUPYTER_RUNTIME_DIR"].startswith(str(state.run))
    missing = rt.make_state({"HOME": str(tmp_path / "nope"), "TMPDIR": str(tmp_path)}, "demo")
    assert missing.home_is_temporary
    assert missing.home == str(tmp_path / f"builder-demo-{os.getuid()}" / "home")
    assert (Path(missing.home).stat().st_mode & 0o777) == 0o700
    assert missing.base == state.base


def test_a_shared_scratch_directory_is_not_trusted(tmp_path: Path) -> None:
    shared = tmp_path / f"builder-demo-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    state = rt.make_state({"HOME": "", "TMPDIR": str(tmp_path)}, "demo")
    assert state.base != shared and state.base.parent == tmp_path


def test_launch_directories_of_finished_launches_are_pruned(tmp_path: Path) -> None:
    dead = tmp_path / "run-999999999-x"
    live = tmp_path / f"run-{os.getpid()}-y"
    dead.mkdir()
    live.mkdir()
    rt.prune_runs(tmp_path)
    assert not dead.exists() and live.exists()


def test_image_python_candidates_skip_the_bundle_and_duplicates(tmp_path: Path) -> None:
    bundle, image = tmp_path / "opt/apps/a/python/bin", tmp_path / "usr/bin"
    for directory in (bundle, image):
        directory.mkdir(parents=True)
        (directory / "python3").write_text("#!/bin/sh\n")
        (directory / "python3").chmod(0o755)
    (image / "python").symlink_to("python3")
    env = {"PATH": f"{bundle}:{image}:{image}"}
    assert rk.python_candidates(env, str(tmp_path / "opt/apps/a")) == [str(image / "python3")]


def test_install_is_offline_by_hash_and_for_the_images_python() -> None:
    argv = rk.install_command(python="/opt/apps/a/python/bin/python3.11", wheelhouse="/w",
                              requirements="/w/requirements-py3.12.txt", target="/u/site",
                              minor="3.12", platform_tags=["manylinux2014_x86_64"])
    assert argv[:5] == ["/opt/apps/a/python/bin/python3.11", "-I", "-m", "pip", "install"]
    for option in ("--no-index", "--find-links=/w", "--require-hashes", "--no-deps", "--no-compile",
                   "--only-binary=:all:", "--target=/u/site", "--python-version=3.12",
                   "--abi=cp312", "--platform=manylinux2014_x86_64",
                   "--requirement=/w/requirements-py3.12.txt"):
        assert option in argv


@pytest.mark.parametrize(("version", "implementation", "machine", "reason"), [
    ("3.12.1", "cpython", "x86_64", None),
    ("3.9.18", "cpython", "x86_64", "the bundled wheelhouse is for CPython 3.10, 3.12;"),
    ("3.12.1", "pypy", "x86_64", "(Python 3.12.1, pypy) has no ipykernel"),
    ("3.12.1", "cpython", "aarch64", "runs on aarch64, the bundled wheelhouse is for x86_64"),
    ("3.12.1t", "cpython", "x86_64", "(Python 3.12.1t, cpython) has no ipykernel"),
])
def test_why_the_wheelhouse_cannot_serve_an_image_python(version: str, implementation: str,
                                                         machine: str, reason: str | None) -> None:
    number, abiflags = version.rstrip("t"), "t" if version.endswith("t") else ""
    image = rk.ImagePython(path="/usr/bin/python3", version=number, ipykernel=False,
                           implementation=implementation, machine=machine, abiflags=abiflags)
    launch = {"arch": "x86_64", "kernels": {"wheelhouse": {"3.12": "r", "3.10": "r"}}}
    found = rk.not_installable(image, launch)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found
        assert "/usr/bin/python3 -m pip install ipykernel" in found


def test_image_kernelspecs_are_wrapped_into_the_images_environment(tmp_path: Path) -> None:
    image_dir = tmp_path / "image"
    for name, argv in (("ir", ["R", "--slave", "-f", "{connection_file}"]),
                       ("python3", ["python3", "-m", "ipykernel_launcher"]),
                       ("broken", "not a list")):
        (image_dir / name).mkdir(parents=True)
        (image_dir / name / "kernel.json").write_text(json.dumps({"argv": argv,
                                                                  "display_name": name}))
    (image_dir / "ir" / "logo-64x64.png").write_bytes(b"png")
    out = tmp_path / "kernels"
    offered = rk.wrap_image_kernelspecs([str(tmp_path / "missing"), str(image_dir)], out,
                                        ["py", "launch.py", "exec", "image"], taken=["python3"])
    assert offered == ["ir"]
    spec = json.loads((out / "ir" / "kernel.json").read_text())
    assert spec["argv"] == ["py", "launch.py", "exec", "image", "--", "R", "--slave", "-f",
                            "{connection_file}"]
    assert (out / "ir" / "logo-64x64.png").read_bytes() == b"png"


def test_command_placeholders_are_filled_and_other_braces_kept() -> None:
    values = {"port": "8888", "base_url": "/x/"}
    assert rt.substitute("--port={port}", values) == "--port=8888"
    assert rt.substitute("--ServerApp.tornado_settings={'a': 1}", values).endswith("{'a': 1}")


def test_kernels_and_terminals_get_edits_of_their_environment() -> None:
    env = rt.apply_delta({"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}, {}, "bundle",
                         append=[("PATH", "/h/.local/bin"), ("PATH", "/usr/bin"),
                                 ("MANPATH", "/m")],
                         assign=[("PYTHONUSERBASE", "/h/u")], unset=["PYTHONNOUSERSITE"])
    assert env == {"PATH": "/usr/bin:/bin:/h/.local/bin", "MANPATH": "/m",
                   "PYTHONUSERBASE": "/h/u"}
    argv = rt.terminal_command(["py", "launch.py", "exec"], shell="/bin/bash", home="/h",
                               app_root="/opt/apps/a")
    assert argv == ["py", "launch.py", "exec", "image", "--append=PATH=/h/.local/bin",
                    "--append=PATH=/opt/apps/a/bin", "--", "/bin/bash"]


@pytest.mark.parametrize(("python3", "image", "expected"), [
    ("image", True, ("bundle-python3", "python3")),
    ("image", False, ("python3", None)),
    ("bundle", True, ("python3", "image-python3")),
    ("bundle", False, ("python3", None)),
])
def test_python3_is_the_images_python_when_it_has_one(python3: str, image: bool,
                                                      expected: tuple[str, str | None]) -> None:
    assert rk.kernel_names(python3, image) == expected


def test_the_image_kernel_sees_its_directory_after_site_packages_only(tmp_path: Path) -> None:
    """The bootstrap appends the directory to sys.path (the image's packages win), sets no
    variable (what the kernel starts does not see it) and runs ipykernel_launcher as -m would."""
    private = tmp_path / "image-kernel" / "cp3xx"
    private.mkdir(parents=True)
    (private / "ipykernel_launcher.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'name': __name__, 'argv': sys.argv[1:], 'path': sys.path,\n"
        "                  'env': 'PYTHONPATH' in os.environ}))\n")
    argv = rk.image_kernel_argv(sys.executable, ["launch", "exec", "image"],
                                directory=str(private), minor="3.11")
    assert argv[:5] == ["launch", "exec", "image", f"--ipykernel-into={private}",
                        "--python-version=3.11"]
    command = argv[argv.index("--") + 1:]
    assert command[-2:] == ["-f", "{connection_file}"]
    proc = subprocess.run([*command[:-1], "/run/kernel.json"], capture_output=True, text=True,
                          check=True, cwd=tmp_path, env={"PATH": os.defpath})
    seen = json.loads(proc.stdout)
    assert seen["name"] == "__main__" and seen["argv"] == ["-f", "/run/kernel.json"]
    assert seen["path"][-1] == str(private) and "" not in seen["path"]
    assert not seen["env"]
    with_own = rk.image_kernel_argv("/usr/bin/python3", ["x"], directory=None, minor="3.11")
    assert with_own == ["x", "--", "/usr/bin/python3", "-m", "ipykernel_launcher", "-f",
                        "{connection_file}"]


def test_a_failed_install_starts_a_kernel_that_says_how_to_fix_it(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    launch = {"name": "a", "arch": "x86_64", "kernels": {"wheelhouse": {"3.11": "r.txt"}}}
    command = ["/usr/bin/python3", "-c", "boot", "-f", "/run/k.json"]
    argv = rk.ensure_image_kernel(str(blocked / "kernel-dir"), "3.11", command, {},
                                  launch=launch, app_root="/opt/apps/a")
    assert argv[:3] == [sys.executable, "-I", "-c"] and argv[-2:] == ["-f", "/run/k.json"]
    assert "/opt/apps/a/bin/launch install-kernel /usr/bin/python3" in argv[3]
    assert f"FileExistsError: [Errno 17] File exists: {str(blocked)!r}" in argv[3]
    ast.parse(argv[3])
    ready = tmp_path / "ready"
    ready.mkdir()
    assert rk.ensure_image_kernel(str(ready), "3.11", command, {}, launch=launch,
                                  app_root="/opt/apps/a") == command


@pytest.mark.parametrize(("python3", "names"), [
    ("image", {"python3": "image", "bundle-python3": "bundle"}),
    ("bundle", {"python3": "bundle", "image-python3": "image"}),
])
def test_kernelspecs_name_the_images_python_python3_unless_the_recipe_says_bundle(
        tmp_path: Path, python3: str, names: dict[str, str]) -> None:
    """offer_kernels with a real image Python (this one, seen through a PATH entry) lacking
    ipykernel that the wheelhouse serves: its kernel installs on first start."""
    image_bin, app = tmp_path / "usr/bin", tmp_path / "opt/apps/a"
    image_bin.mkdir(parents=True)
    probe = subprocess.run([sys.executable, "-c", rk.PROBE], capture_output=True, text=True,
                           check=True)
    seen = json.loads(probe.stdout)
    (image_bin / "python3").write_text(  # answers the probe as this Python, without ipykernel
        f"#!/bin/sh\necho '{json.dumps({**seen, 'ipykernel': False})}'\n")
    (image_bin / "python3").chmod(0o755)
    minor = ".".join(seen["version"].split(".")[:2])
    (app / "share/wheelhouse").mkdir(parents=True)
    (app / "share/wheelhouse/r.txt").write_text("ipykernel==6.29.5 --hash=sha256:00\n")
    launch = {"name": "a", "arch": seen["machine"], "kernels": {
        "image_python": "install", "python3": python3, "wheelhouse": {minor: "r.txt"}}}
    home = tmp_path / "home"
    offered = rk.offer_kernels(launch, app_root=str(app), kernel_dir=tmp_path / "kernels",
                               image_env={"PATH": str(image_bin), "HOME": str(home)},
                               helper=["launch", "exec"])
    assert {name: "image" if str(image_bin / "python3") in argv else "bundle"
            for name, argv in offered.items()} == names
    image_name = next(n for n, kind in names.items() if kind == "image")
    into = next(a for a in offered[image_name] if a.startswith("--ipykernel-into="))
    tag = f"cp{minor.replace('.', '')}{seen['abiflags']}-{seen['machine']}-"
    assert into.startswith(f"--ipykernel-into={home}/.local/share/a/image-kernel/{tag}")
    bundle = offered[next(n for n, kind in names.items() if kind == "bundle")]
    assert f"--set=PYTHONUSERBASE={home}/.local/share/a/user" in bundle
    assert "--unset=PYTHONNOUSERSITE" in bundle and "-s" not in bundle
    for name in offered:
        spec = json.loads((tmp_path / "kernels" / name / "kernel.json").read_text())
        assert spec["argv"] == offered[name]
    launch["kernels"]["wheelhouse"] = {}  # a Python the wheelhouse cannot serve: bundle only
    assert set(rk.offer_kernels(launch, app_root=str(app), kernel_dir=tmp_path / "k2",
                                image_env={"PATH": str(image_bin), "HOME": str(home)},
                                helper=["launch", "exec"])) == {"python3"}
