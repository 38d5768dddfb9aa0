"""The agent: install bundles into a node's store (verified, atomic, under a byte budget), check
them against target images and plan the read-only mounts that inject them into containers.

Library first; ``builder agent ...`` (``builder.cli.agent``) is a thin layer over these.
"""

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

__all__ = [
    "BundleNeeds", "CheckResult", "EntryRecord", "EntryState", "GcPlan", "GcReport",
    "ImageFacts", "InstallOptions", "InstallResult", "Limits", "MountFormat", "MountPlan",
    "NetAgentTransport", "OciOptions", "RefusedBundleError", "ResolvedSource", "Store",
    "StoreError", "Verdict", "check_compat", "collect_garbage", "entry_problems",
    "image_from_numbers", "install", "mounts_for", "plan_gc", "plan_mounts", "probe_rootfs",
    "render_plan", "resolve_source",
]
