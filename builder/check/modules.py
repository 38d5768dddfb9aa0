"""Which modules the import check imports: pure functions over installed RECORD files.

A distribution's RECORD (not ``top_level.txt``: setuptools-only, and often stale) lists every file
it installed, relative to site-packages. Its *import roots* are the shortest dotted names that are
real modules, reached through namespace directories only:

- ``pkg/__init__.py``                           -> ``pkg`` (a regular package)
- ``mod.py``                                    -> ``mod`` (a single-file module)
- ``ext.cpython-311-x86_64-linux-gnu.so``,      -> ``ext`` (an extension module; only with an
  ``ext.abi3.so``                                  ABI tag: a bare ``libfoo.so`` beside the
                                                   packages is a shared library, not a module)
- ``ns/sub/__init__.py`` without ``ns/__init__.py`` -> ``ns.sub`` (``ns`` is a namespace
  package: importing it alone proves nothing)

Left out: whatever has a path part that is not an identifier (paths outside site-packages
``../../bin/x``, ``*.dist-info``, ``*.data``, ``foo-stubs``, ``numpy.libs``), files that are not
modules (``.pyc`` in ``__pycache__``, ``.pth``, ``.pyi``, data),
and ``_private`` roots when the distribution has a public one (the public modules import them;
a distribution with only private roots, like a ``_cffi_backend``-only one, gets those imported).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from builder.check.model import ImportTarget, SkippedModule

# an extension module's file name: NAME.cpython-311-x86_64-linux-gnu.so, NAME.abi3.so,
# NAME.cpython-311.so (what EXTENSION_SUFFIXES of a CPython on Linux accept, except bare .so)
_EXTENSION = re.compile(r"^(?P<name>[^.]+)\.(?:cpython-\d+[^.]*|abi3)\.so$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Modules that legitimately do not import in a finished app, each with the reason. Kept small:
# everything else that fails is a real defect the recipe should fix or skip on purpose.
BUILTIN_SKIPS: Mapping[str, str] = {
    # ipykernel depends on matplotlib-inline but leaves matplotlib optional: the backend imports
    # matplotlib at once, so it imports only where the user also installed matplotlib
    "matplotlib_inline": "matplotlib's backend for ipykernel (matplotlib itself is optional)",
    "conftest": "pytest configuration installed by mistake (needs pytest)",
    "setup": "a setup script installed by mistake (importing it runs setup())",
    "test": "a test suite installed at the top level (needs its test-only dependencies)",
    "tests": "a test suite installed at the top level (needs its test-only dependencies)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """One installed distribution as its RECORD lists it."""

    name: str  # as in METADATA (canonicalised by the caller)
    version: str
    files: tuple[str, ...]  # RECORD paths, relative to site-packages


def record_paths(record_text: str) -> tuple[str, ...]:
    """The path column of a RECORD (CSV: path,hash,size; paths with commas are quoted)."""
    rows = csv.reader(record_text.splitlines())
    return tuple(sorted({row[0] for row in rows if row and row[0]}))


def _module_files(files: Iterable[str]) -> dict[tuple[str, ...], bool]:
    """Dotted module paths found in ``files``: parts -> whether it is a package."""
    found: dict[tuple[str, ...], bool] = {}
    for path in files:
        # "..", "", ".", "x.dist-info", "x.data", "x-stubs" need no rule of their own: only
        # identifiers are module names (the filter at the end)
        *dirs, leaf = path.split("/")
        if leaf == "__init__.py":
            found[tuple(dirs)] = True
            continue
        match = _EXTENSION.match(leaf)
        if leaf.endswith(".py"):
            name = leaf[:-3]
        elif match:
            name = match["name"]
        else:
            continue
        if name == "__init__":  # an extension package (__init__.cpython-311-...so)
            found[tuple(dirs)] = True
        else:
            found.setdefault((*dirs, name), False)
    return {parts: pkg for parts, pkg in found.items()
            if parts and all(_IDENTIFIER.match(p) for p in parts)}


def import_roots(files: Iterable[str]) -> tuple[str, ...]:
    """The modules to import for one distribution's RECORD ``files`` (sorted)."""
    modules = _module_files(files)
    roots = set()
    for parts in modules:
        # the shortest prefix that is itself a module: above it only namespace directories
        for end in range(1, len(parts) + 1):
            if parts[:end] in modules:
                roots.add(parts[:end])
                break
    names = sorted(".".join(p) for p in roots)
    public = [n for n in names if not n.split(".")[-1].startswith("_")]
    return tuple(public or names)


def _skip_reason(module: str, skips: Mapping[str, str]) -> tuple[str, str] | None:
    """The skip entry (name, reason) that covers ``module`` (itself or a parent package)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in skips:
            return name, skips[name]
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSelection:
    targets: tuple[ImportTarget, ...]  # sorted by module
    skipped: tuple[SkippedModule, ...]  # sorted by module
    unused_skips: tuple[str, ...]  # names of checks.import_skip that matched no module


def select_imports(distributions: Sequence[Distribution], *,
                   recipe_skips: Sequence[str]) -> ImportSelection:
    """Every distribution's import roots, merged by module, minus the skipped ones."""
    owners: dict[str, set[str]] = {}
    for dist in distributions:
        for module in import_roots(dist.files):
            owners.setdefault(module, set()).add(f"{dist.name} {dist.version}")
    skips = {**BUILTIN_SKIPS, **dict.fromkeys(recipe_skips, "checks.import_skip")}
    targets, skipped, used = [], [], set()
    for module in sorted(owners):
        dists = tuple(sorted(owners[module]))
        hit = _skip_reason(module, skips)
        if hit is None:
            targets.append(ImportTarget(module=module, distributions=dists))
        else:
            used.add(hit[0])
            skipped.append(SkippedModule(module=module, distributions=dists, reason=hit[1]))
    unused = tuple(sorted(set(recipe_skips) - used))
    return ImportSelection(targets=tuple(targets), skipped=tuple(skipped), unused_skips=unused)
