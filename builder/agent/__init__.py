"""The agent: install bundles into a node's store (verified, atomic, under a byte budget), check
them against target images and plan the read-only mounts that inject them into containers.

Library first; ``builder agent ...`` (``builder.cli.agent``) is a thin layer over these.
"""

from typing import TYPE_CHECKING

from builder import lazy_exports

if TYPE_CHECKING:  # the same names, imported on first use (lazy_exports)
    from builder.agent.compat.model import (
        BundleNeeds,
        CheckResult,
        ImageFacts,
        Verdict,
        image_from_numbers,
    )
    from builder.agent.compat.probe import probe_rootfs
    from builder.agent.compat.verdict import check_compat
    from builder.agent.errors import RefusedBundleError, StoreError
    from builder.agent.extract import Limits
    from builder.agent.gc import GcPlan, GcReport, collect_garbage, plan_gc
    from builder.agent.install import InstallOptions, InstallResult, NetAgentTransport, install
    from builder.agent.mounts import MountFormat, MountPlan, mounts_for, plan_mounts, render_plan
    from builder.agent.oci import OciOptions
    from builder.agent.source import ResolvedSource, resolve_source
    from builder.agent.store import EntryRecord, EntryState, Store
    from builder.agent.verify import entry_problems

_EXPORTS = {
    "BundleNeeds": "builder.agent.compat.model",
    "CheckResult": "builder.agent.compat.model",
    "EntryRecord": "builder.agent.store",
    "EntryState": "builder.agent.store",
    "GcPlan": "builder.agent.gc",
    "GcReport": "builder.agent.gc",
    "ImageFacts": "builder.agent.compat.model",
    "InstallOptions": "builder.agent.install",
    "InstallResult": "builder.agent.install",
    "Limits": "builder.agent.extract",
    "MountFormat": "builder.agent.mounts",
    "MountPlan": "builder.agent.mounts",
    "NetAgentTransport": "builder.agent.install",
    "OciOptions": "builder.agent.oci",
    "RefusedBundleError": "builder.agent.errors",
    "ResolvedSource": "builder.agent.source",
    "Store": "builder.agent.store",
    "StoreError": "builder.agent.errors",
    "Verdict": "builder.agent.compat.model",
    "check_compat": "builder.agent.compat.verdict",
    "collect_garbage": "builder.agent.gc",
    "entry_problems": "builder.agent.verify",
    "image_from_numbers": "builder.agent.compat.model",
    "install": "builder.agent.install",
    "mounts_for": "builder.agent.mounts",
    "plan_gc": "builder.agent.gc",
    "plan_mounts": "builder.agent.mounts",
    "probe_rootfs": "builder.agent.compat.probe",
    "render_plan": "builder.agent.mounts",
    "resolve_source": "builder.agent.source",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BundleNeeds", "CheckResult", "EntryRecord", "EntryState", "GcPlan", "GcReport",
    "ImageFacts", "InstallOptions", "InstallResult", "Limits", "MountFormat", "MountPlan",
    "NetAgentTransport", "OciOptions", "RefusedBundleError", "ResolvedSource", "Store",
    "StoreError", "Verdict", "check_compat", "collect_garbage", "entry_problems",
    "image_from_numbers", "install", "mounts_for", "plan_gc", "plan_mounts", "probe_rootfs",
    "render_plan", "resolve_source",
]
