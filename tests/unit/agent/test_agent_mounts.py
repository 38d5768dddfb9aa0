"""Mount plans: the same two read-only mounts as JSON, docker arguments, k8s and Backend.AI."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest
from agent_factories import X86, make_bundle

from builder.agent import InstallOptions, NetAgentTransport, Store, install
from builder.agent.mounts import (
    NO_SERVICE_DEF,
    MountFormat,
    assign_ports,
    k8s_volume_name,
    plan_mounts,
    render_plan,
)
from builder.agent.source import resolve_source
from builder.cli.main import main
from builder.errors import BuilderError

T = NetAgentTransport()


def installed(tmp_path: Path, *, service_def: bool = True, store_dir: str = "store",
              name: str = "jupyter-6", port: int = 8080) -> tuple[Store, Path, str]:
    service = {"command": ["bin/run"], "protocol": "http", "port": port}
    bundle = make_bundle(tmp_path / "dist", name=name, service_def=service_def,
                         overrides={"service": service})
    store = Store(root=tmp_path / store_dir)
    source = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                            transport=T)
    result = install(source, store, transport=T, options=InstallOptions())
    return store, result.path, bundle.sha256


def test_json_plan(tmp_path: Path) -> None:
    store, entry, sha = installed(tmp_path)
    plan = plan_mounts(store.resolve("jupyter-6"), entry)
    data = json.loads(render_plan(plan, MountFormat.JSON))
    assert data == {
        "format_version": 1, "name": "jupyter-6", "version": "1.0", "sha256": sha,
        "entry": str(entry), "service_def": True, "notes": [], "image": None,
        "mounts": [
            {"kind": "app", "source": str(entry / "app"), "target": "/opt/apps/jupyter-6",
             "type": "directory", "read_only": True},
            {"kind": "service-def", "source": str(entry / "service-def.json"),
             "target": "/etc/backend.ai/service-defs/jupyter-6.json", "type": "file",
             "read_only": True},
        ],
    }


def test_without_service_def_the_second_mount_is_omitted_and_said(tmp_path: Path) -> None:
    store, entry, _ = installed(tmp_path, service_def=False)
    plan = plan_mounts(store.resolve("jupyter-6"), entry)
    data = json.loads(render_plan(plan, MountFormat.JSON))
    assert [m["kind"] for m in data["mounts"]] == ["app"]
    assert data["service_def"] is False and data["notes"] == [NO_SERVICE_DEF]


def test_docker_arguments(tmp_path: Path) -> None:
    store, entry, _ = installed(tmp_path, store_dir="store with space")
    text = render_plan(plan_mounts(store.resolve("jupyter-6"), entry), MountFormat.DOCKER)
    assert shlex.split(text) == [
        "--mount", f"type=bind,source={entry}/app,target=/opt/apps/jupyter-6,readonly",
        "--mount", f"type=bind,source={entry}/service-def.json,"
        "target=/etc/backend.ai/service-defs/jupyter-6.json,readonly"]


def test_k8s_fragment(tmp_path: Path) -> None:
    store, entry, _ = installed(tmp_path)
    data = json.loads(render_plan(plan_mounts(store.resolve("jupyter-6"), entry),
                                  MountFormat.K8S))
    assert data == {
        "volumes": [
            {"name": "builder-jupyter-6-app",
             "hostPath": {"path": str(entry / "app"), "type": "Directory"}},
            {"name": "builder-jupyter-6-service-def",
             "hostPath": {"path": str(entry / "service-def.json"), "type": "File"}}],
        "volumeMounts": [
            {"name": "builder-jupyter-6-app", "mountPath": "/opt/apps/jupyter-6",
             "readOnly": True},
            {"name": "builder-jupyter-6-service-def",
             "mountPath": "/etc/backend.ai/service-defs/jupyter-6.json", "readOnly": True}],
    }


def test_k8s_volume_names_are_dns_labels() -> None:
    assert k8s_volume_name("vs.code_server", "app") == "builder-vs-code-server-app"
    long = k8s_volume_name("a" * 80, "service-def")
    assert len(long) <= 63 and long.startswith("builder-aaa")
    assert long != k8s_volume_name("a" * 81, "service-def")


def test_backendai_mounts(tmp_path: Path) -> None:
    store, entry, _ = installed(tmp_path)
    data = json.loads(render_plan(plan_mounts(store.resolve("jupyter-6"), entry),
                                  MountFormat.BACKENDAI))
    assert data["mounts"] == [
        {"type": "bind", "source": str(entry / "app"), "target": "/opt/apps/jupyter-6",
         "permission": "ro", "opts": None},
        {"type": "bind", "source": str(entry / "service-def.json"),
         "target": "/etc/backend.ai/service-defs/jupyter-6.json", "permission": "ro", "opts": None}]
    assert data["resource_txt"] == (
        f"{entry}/app:/opt/apps/jupyter-6:ro,"
        f"{entry}/service-def.json:/etc/backend.ai/service-defs/jupyter-6.json:ro")
    assert data["service_ports"] == "jupyter-6:http:8080"
    assert data["ports"] == {"jupyter-6": 8080}


def test_the_proposals_service_defs_dir_is_an_option(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    store, entry, _ = installed(tmp_path)
    assert main(["agent", "mounts", "jupyter-6", "--store", str(store.root), "--format",
                 "docker", "--service-defs-dir", "/opt/kernel/service-defs/"]) == 0
    assert shlex.split(capsys.readouterr().out)[-1] == (
        f"type=bind,source={entry}/service-def.json,"
        "target=/opt/kernel/service-defs/jupyter-6.json,readonly")
    for bad in ("opt/kernel", "/opt/../etc", "/a:b"):
        assert main(["agent", "mounts", "jupyter-6", "--store", str(store.root),
                     "--service-defs-dir", bad]) == 2
        assert "is not an absolute directory path" in capsys.readouterr().err


def two_jupyters(tmp_path: Path) -> Store:
    """jupyter-6 and jupyterlab-4 (both on 8888) and tiny (no service-def) in one store."""
    store = Store(root=tmp_path / "store")
    for name, service_def in (("jupyter-6", True), ("jupyterlab-4", True), ("tiny", False)):
        service = {"command": ["bin/run"], "protocol": "http", "port": 8888}
        bundle = make_bundle(tmp_path / "dist", name=name, service_def=service_def,
                             overrides={"service": service})
        source = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                                transport=T)
        install(source, store, transport=T, options=InstallOptions())
    return store


def test_several_apps_get_distinct_ports_and_one_service_ports_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = two_jupyters(tmp_path)
    assert main(["agent", "mounts", "jupyter-6", "tiny", "jupyterlab-4", "--store",
                 str(store.root), "--format", "backendai"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["service_ports"] == "jupyter-6:http:8888,jupyterlab-4:http:8889"
    assert data["ports"] == {"jupyter-6": 8888, "jupyterlab-4": 8889}
    assert [m["target"] for m in data["mounts"]] == [
        "/opt/apps/jupyter-6", "/etc/backend.ai/service-defs/jupyter-6.json",
        "/opt/apps/tiny", "/opt/apps/jupyterlab-4",
        "/etc/backend.ai/service-defs/jupyterlab-4.json"]
    assert f"note: tiny: {NO_SERVICE_DEF}" in captured.err
    # the order given decides who keeps the declared port
    assert main(["agent", "mounts", "jupyterlab-4", "jupyter-6", "--store", str(store.root),
                 "--format", "backendai"]) == 0
    assert json.loads(capsys.readouterr().out)["service_ports"] == (
        "jupyterlab-4:http:8888,jupyter-6:http:8889")


def test_ports_backend_ai_reserves_or_takes_are_skipped(tmp_path: Path) -> None:
    store = two_jupyters(tmp_path)
    plans = [plan_mounts(store.resolve(n), store.entry_path(store.resolve(n).sha256))
             for n in ("jupyter-6", "jupyterlab-4")]
    low = [dataclasses.replace(p, service=("http", 2000)) for p in plans]
    assert assign_ports(low) == {"jupyter-6": 2004, "jupyterlab-4": 2005}
    assert assign_ports(plans) == {
        "jupyter-6": 8888, "jupyterlab-4": 8889}
    with pytest.raises(BuilderError, match="given twice"):
        assign_ports([plans[0], plans[0]])
    top = [dataclasses.replace(p, service=("http", 65534)) for p in plans]
    with pytest.raises(BuilderError, match=r"no free Backend\.AI service port is left for "
                       "jupyterlab-4"):
        assign_ports(top)


def test_several_apps_need_the_backendai_format(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    store = two_jupyters(tmp_path)
    assert main(["agent", "mounts", "jupyter-6", "jupyterlab-4", "--store",
                 str(store.root)]) == 2
    assert "several apps go with --format backendai, not json" in capsys.readouterr().err


def test_paths_a_format_cannot_carry_are_refused(tmp_path: Path) -> None:
    store, entry, _ = installed(tmp_path, store_dir="st:o,re")
    plan = plan_mounts(store.resolve("jupyter-6"), entry)
    for fmt in (MountFormat.BACKENDAI, MountFormat.DOCKER):
        with pytest.raises(BuilderError, match=f"cannot be written in the {fmt} format"):
            render_plan(plan, fmt)
    assert json.loads(render_plan(plan, MountFormat.K8S))["volumes"]


def test_cli_mounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, entry, sha = installed(tmp_path, service_def=False)
    assert main(["agent", "mounts", "jupyter-6", "--store", str(store.root),
                 "--format", "docker"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == shlex.join(
        ["--mount", f"type=bind,source={entry}/app,target=/opt/apps/jupyter-6,readonly"])
    assert f"note: {NO_SERVICE_DEF}" in captured.err
    assert main(["agent", "mounts", sha[:10], "--store", str(store.root)]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == sha
    assert main(["agent", "mounts", "other", "--store", str(store.root)]) == 1
    assert "no entry other in the store" in capsys.readouterr().err
