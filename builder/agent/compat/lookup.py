"""What a bundle needs, found by the reference ``builder agent check`` is given."""

from __future__ import annotations

from pathlib import Path

from builder.agent.compat.model import BundleNeeds
from builder.agent.store import Store
from builder.bundle.inspect import inspect_bundle
from builder.errors import BuilderError


def load_bundle_needs(ref: str, *, store_root: Path | None) -> BundleNeeds:
    """What a bundle needs, from an archive, its sidecar, an entry directory or a store name."""
    path = Path(ref)
    if path.is_dir():
        return BundleNeeds.from_manifest(inspect_bundle(path / "manifest.json"), where=ref)
    if path.is_file():
        return BundleNeeds.from_manifest(inspect_bundle(path), where=ref)
    if store_root is None:
        raise BuilderError("no such bundle file", where=ref,
                           hint="give a .tar.zst, its sidecar .json, or a name with --store DIR")
    store = Store(root=store_root)
    record = store.resolve(ref)
    entry = store.entry_path(record.sha256)
    return BundleNeeds.from_manifest(inspect_bundle(entry / "manifest.json"), where=str(entry))
