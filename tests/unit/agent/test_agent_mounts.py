"""Mount plans: the same two read-only mounts as JSON, docker arguments, k8s and Backend.AI."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from agent_factories import X86, make_bundle

from builder.agent import InstallOptions, NetAgentTransport, Store, install
from builder.agent.mounts import (
    NO_SERVICE_DEF,
    MountFormat,
    k8s_volume_name,
    plan_mounts,
    render_plan,
)
from builder.agent.source import resolve_source
from builder.cli.main import main
from builder.errors import BuilderError

T = NetAgentTransport()


def installed(tmp_path: Path, *, service_def: bool = True, store_dir: str = "store"
              ) -> tuple[Store, Path, str]:
    bundle = make_bundle(tmp_path / "dist", name="jupyter-6", service_def=service_def)
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
             "target": "/opt/kernel/service-defs/jupyter-6.json", "type": "file",
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
        "target=/opt/kernel/service-defs/jupyter-6.json,readonly"]


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
             "mountPath": "/opt/kernel/service-defs/jupyter-6.json", "readOnly": True}],
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
         "target": "/opt/kernel/service-defs/jupyter-6.json", "permission": "ro", "opts": None}]
    assert data["resource_txt"] == (
        f"{entry}/app:/opt/apps/jupyter-6:ro,"
        f"{entry}/service-def.json:/opt/kernel/service-defs/jupyter-6.json:ro")


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
