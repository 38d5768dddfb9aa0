"""``builder agent mounts``: the read-only mounts that inject an installed app into a container.

``<entry>/app`` goes to ``/opt/apps/<name>`` and, when the bundle has one,
``<entry>/service-def.json`` to ``/etc/backend.ai/service-defs/<name>.json``, where Backend.AI's
kernel runner (``backend.ai-kernel``) loads service definitions; ``service_defs_dir`` moves it
(e.g. to ``/opt/kernel/service-defs``, the draft App Injection proposal's path, which no released
kernel runner reads). One plan, four renderings:

- ``json``: the plan itself (format_version 1).
- ``docker``: ``docker run`` arguments, shell-quoted (``--mount type=bind,...,readonly``).
- ``k8s``: a pod-spec fragment, ``volumes`` (hostPath) and ``volumeMounts`` (readOnly), as JSON
  (which is YAML too). With ``image_volume`` the app volume is a Kubernetes ImageVolume of the
  pinned image reference the entry was installed from (or one given), ``pullPolicy:
  IfNotPresent``; the image's root is the bundle's ``app/``. ``service-def.json`` is not in the
  image (it travels as an annotation), so it stays a hostPath of this node's store entry.
- ``backendai``: Backend.AI agent mount entries, the fields of its ``Mount`` record (type, source,
  target, permission, opts) and their ``resource.txt`` form ``source:target:ro``, for one or
  several bundles, with the one ``ai.backend.service-ports`` value they share: each service keeps
  the port its bundle declares unless an earlier one took it (or Backend.AI reserves it), then
  it gets the next free one (the service-def's command reads it as ``{ports[0]}``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from builder.agent.errors import StoreError
from builder.agent.mount import is_mounted
from builder.agent.store import EntryRecord, Store
from builder.errors import BuilderError, UsageError
from builder.layout import APP, MANIFEST, SERVICE_DEF
from builder.oci.reference import parse_reference

APPS_ROOT = "/opt/apps"
SERVICE_DEFS_ROOT = "/etc/backend.ai/service-defs"  # ai.backend.kernel's BaseRunner reads it
PROPOSAL_SERVICE_DEFS_ROOT = "/opt/kernel/service-defs"  # the draft App Injection proposal's
# ports Backend.AI keeps for itself (ai.backend.common.service_ports)
RESERVED_PORTS = frozenset({2000, 2001, 2002, 2003, 2200, 7681})
PLAN_FORMAT_VERSION = 1
NO_SERVICE_DEF = "the bundle has no service-def.json: no service definition is mounted"
IMAGE_VOLUME_NOTE = ("app/ is an ImageVolume of {image} (pulled by the node's container "
                     "runtime); service-def.json stays a hostPath of this node's store entry")


class MountFormat(StrEnum):
    JSON = "json"
    DOCKER = "docker"
    K8S = "k8s"
    BACKENDAI = "backendai"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    kind: str  # "app" | "service-def"
    source: Path
    target: str
    directory: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MountPlan:
    name: str
    version: str
    sha256: str
    entry: Path
    mounts: tuple[Mount, ...]
    notes: tuple[str, ...]
    image: str | None = None  # REGISTRY/REPO@sha256:... when installed from an OCI image
    # the service the bundle declares (manifest.json "service"): protocol and port, if any
    service: tuple[str, int] | None = None

    @property
    def service_def(self) -> bool:
        return any(m.kind == "service-def" for m in self.mounts)


def service_defs_dir(value: str) -> str:
    """A ``--service-defs-dir``: absolute, normalized, no ``..``, no characters a mount
    format cannot carry."""
    if not value.startswith("/") or ".." in value.split("/") or any(
            c in value for c in ':,"\n') or not value.isprintable():
        raise UsageError(f"--service-defs-dir {value!r} is not an absolute directory path",
                         hint=f"e.g. {SERVICE_DEFS_ROOT} (the default) or "
                         f"{PROPOSAL_SERVICE_DEFS_ROOT}")
    return "/" + "/".join(p for p in value.split("/") if p not in ("", "."))


def _declared_service(entry: Path) -> tuple[str, int] | None:
    """(protocol, port) of the bundle's ``[service]`` from its checked manifest.json."""
    try:
        service = json.loads((entry / MANIFEST).read_text()).get("service")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(service, dict):
        return None
    port, protocol = service.get("port"), service.get("protocol", "http")
    if not isinstance(port, int) or not isinstance(protocol, str):
        return None
    # Backend.AI knows http, tcp and preopen; a raw VNC server is a TCP service to it
    return ("tcp" if protocol == "vnc" else protocol), port


def plan_mounts(record: EntryRecord, entry: Path, *,
                defs_dir: str = SERVICE_DEFS_ROOT) -> MountPlan:
    mounts = [Mount(kind="app", source=entry / APP, target=f"{APPS_ROOT}/{record.name}",
                    directory=True)]
    notes = []
    if (entry / SERVICE_DEF).is_file():
        mounts.append(Mount(kind="service-def", source=entry / SERVICE_DEF,
                            target=f"{defs_dir.rstrip('/')}/{record.name}.json",
                            directory=False))
    else:
        notes.append(NO_SERVICE_DEF)
    return MountPlan(name=record.name, version=record.version, sha256=record.sha256,
                     entry=entry, mounts=tuple(mounts), notes=tuple(notes),
                     image=record.oci_reference, service=_declared_service(entry))


def mounts_for(store: Store, ref: str, *, defs_dir: str = SERVICE_DEFS_ROOT) -> MountPlan:
    """The plan for an installed entry (by name, name@version or sha256); counts as a use."""
    record = store.resolve(ref)
    entry = store.entry_path(record.sha256)
    if record.image is not None and not is_mounted(entry):  # a mounted entry after a reboot
        raise StoreError(f"the image of {record.name} {record.version} is not mounted",
                         where=str(entry), hint="install the bundle again (`builder agent "
                         "install`): it hashes the stored image and mounts it")
    store.touch(record.sha256)
    return plan_mounts(record, entry, defs_dir=defs_dir)


def _refuse_chars(plan: MountPlan, chars: str, fmt: MountFormat) -> None:
    for mount in plan.mounts:
        bad = sorted({c for c in str(mount.source) if c in chars or not c.isprintable()})
        if bad:
            raise BuilderError(
                f"the store path cannot be written in the {fmt} format (it contains "
                f"{', '.join(map(repr, bad))})", where=str(mount.source),
                hint="use a store directory without these characters")


def plan_to_dict(plan: MountPlan) -> dict[str, Any]:
    return {
        "format_version": PLAN_FORMAT_VERSION, "name": plan.name, "version": plan.version,
        "sha256": plan.sha256, "entry": str(plan.entry), "service_def": plan.service_def,
        "image": plan.image,
        "mounts": [{"kind": m.kind, "source": str(m.source), "target": m.target,
                    "type": "directory" if m.directory else "file", "read_only": True}
                   for m in plan.mounts],
        "notes": list(plan.notes),
    }


def docker_args(plan: MountPlan) -> list[str]:
    _refuse_chars(plan, ',"\n', MountFormat.DOCKER)
    args: list[str] = []
    for m in plan.mounts:
        args += ["--mount", f"type=bind,source={m.source},target={m.target},readonly"]
    return args


def k8s_volume_name(name: str, kind: str) -> str:
    """A DNS-1123 label (at most 63 characters) for one mount of one app."""
    label = re.sub(r"[^a-z0-9-]", "-", f"builder-{name}-{kind}")
    if len(label) > 63:
        digest = hashlib.sha256(label.encode()).hexdigest()[:8]
        label = f"{label[:54].rstrip('-')}-{digest}"
    return label


def k8s_fragment(plan: MountPlan) -> dict[str, Any]:
    return {
        "volumes": [{"name": k8s_volume_name(plan.name, m.kind),
                     "hostPath": {"path": str(m.source),
                                  "type": "Directory" if m.directory else "File"}}
                    for m in plan.mounts],
        "volumeMounts": [{"name": k8s_volume_name(plan.name, m.kind), "mountPath": m.target,
                          "readOnly": True} for m in plan.mounts],
    }


def pinned_image(plan: MountPlan, image: str | None) -> str:
    """The image reference an ImageVolume mounts: ``image`` if given (it must carry a digest),
    else the one the entry was installed from."""
    if image is None:
        if plan.image is None:
            raise BuilderError(
                f"{plan.name} {plan.version} was not installed from an OCI image: there is no "
                "image reference to mount", where=str(plan.entry),
                hint="install it with `builder agent install oci://REGISTRY/REPO@sha256:...`, or "
                "give the reference `builder push` printed with --image REGISTRY/REPO@sha256:...")
        return plan.image
    ref = parse_reference(image)
    if ref.digest is None:
        raise UsageError(f"--image {image} has no digest: a tag can move",
                         hint="give the pinned reference `builder push` printed, "
                         "REGISTRY/REPO@sha256:...")
    return str(ref)


def k8s_image_fragment(plan: MountPlan, image: str | None = None) -> dict[str, Any]:
    """Like :func:`k8s_fragment`, the app volume an ImageVolume of the pinned image."""
    reference = pinned_image(plan, image)
    fragment = k8s_fragment(plan)
    for volume in fragment["volumes"]:
        if volume["name"] == k8s_volume_name(plan.name, "app"):
            del volume["hostPath"]
            volume["image"] = {"reference": reference, "pullPolicy": "IfNotPresent"}
    return fragment


def assign_ports(plans: list[MountPlan]) -> dict[str, int]:
    """Service name -> a distinct port for every plan with a service-def, in order: the port
    its bundle declares, else the next one no earlier service took and Backend.AI allows."""
    names = [p.name for p in plans]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{', '.join(twice)} given twice: one container serves one service "
                         "of a name", hint="give each app once")
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for plan in plans:
        if not plan.service_def:
            continue
        if plan.service is None:
            raise BuilderError(f"{plan.name} has a service-def.json but its manifest declares "
                               "no service port", where=str(plan.entry / MANIFEST),
                               hint="reinstall the bundle (builder agent install)")
        port = max(plan.service[1], 1025)
        while port in taken or port in RESERVED_PORTS:
            port += 1
        if port >= 65535:
            raise BuilderError(f"no free Backend.AI service port is left for {plan.name}",
                               where=str(plan.entry), hint="mount fewer apps into one container")
        taken.add(port)
        ports[plan.name] = port
    return ports


def backendai_mounts(plans: list[MountPlan]) -> dict[str, Any]:
    """Mount entries of every plan and the ``ai.backend.service-ports`` value they share."""
    for plan in plans:
        _refuse_chars(plan, ":,\n", MountFormat.BACKENDAI)
    ports = assign_ports(plans)
    entries = [{"type": "bind", "source": str(m.source), "target": m.target,
                "permission": "ro", "opts": None} for plan in plans for m in plan.mounts]
    service_ports = ",".join(f"{p.name}:{p.service[0]}:{ports[p.name]}" for p in plans
                             if p.name in ports and p.service is not None)
    return {"mounts": entries,
            "resource_txt": ",".join(f"{e['source']}:{e['target']}:ro" for e in entries),
            "service_ports": service_ports, "ports": ports}


def render_plan(plan: MountPlan, fmt: MountFormat, *, image_volume: bool = False,
                image: str | None = None) -> str:
    """The plan in ``fmt``; ``image_volume`` (k8s only) mounts app/ from the image ``image``
    (default: the reference the entry was installed from)."""
    if image_volume or image is not None:
        if fmt is not MountFormat.K8S:
            raise UsageError(f"an ImageVolume is a k8s mount, not {fmt} (use --format k8s)")
        return json.dumps(k8s_image_fragment(plan, image), indent=2, sort_keys=True)
    if fmt is MountFormat.DOCKER:
        return shlex.join(docker_args(plan))
    if fmt is MountFormat.BACKENDAI:
        return json.dumps(backendai_mounts([plan]), indent=2, sort_keys=True)
    data = {MountFormat.JSON: plan_to_dict, MountFormat.K8S: k8s_fragment}[fmt](plan)
    return json.dumps(data, indent=2, sort_keys=True)
