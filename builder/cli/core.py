"""Build-side commands: lock, build, inspect, runtime import, schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from builder.cli import env

# every JSON file builder writes or reads has a schema: kind -> (package, file)
SCHEMAS = {
    "recipe": ("builder.recipe", "recipe.schema.json"),
    "manifest": ("builder.bundle", "manifest.schema.json"),
    "service-def": ("builder.launch", "service-def.schema.json"),
    "launch": ("builder.launch", "launch.schema.json"),
    "index": ("builder.catalog", "index.schema.json"),
}


def register(sub: Any) -> None:
    lock = sub.add_parser("lock", help="resolve and pin a recipe for every target")
    lock.add_argument("recipe", type=Path)
    lock.add_argument("--lock-dir", type=Path, help="default: lockfiles/<name> beside recipes/")
    lock.add_argument("--check", action="store_true",
                      help="resolve nothing; exit 1 unless the committed lock is fresh")
    lock.add_argument("--upgrade", action="store_true",
                      help="resolve nothing; rewrite a fresh lock of an older format in the "
                      "current one (adds its integrity digest)")
    lock.set_defaults(handler=_lock)

    build = sub.add_parser("build", help="build the bundle of a recipe")
    build.add_argument("recipe", type=Path)
    build.add_argument("--target", action="append", default=[],
                       help="target triple (repeatable, or 'all'); default: this machine's")
    build.add_argument("--out", type=Path, default=Path("dist"), help="default: dist/")
    build.add_argument("--python-from", type=Path, metavar="ARCHIVE|PREFIX",
                       help="use this interpreter archive or installed CPython instead of "
                       "downloading python-build-standalone")
    build.add_argument("--lock-dir", type=Path)
    build.add_argument("--image", choices=["squashfs"], default=None,
                       help="also write a reproducible, mountable filesystem image of the "
                       "bundle beside the archive (listed in the sidecar; needs mksquashfs)")
    build.set_defaults(handler=_build)

    inspect = sub.add_parser("inspect", help="print the manifest of a bundle")
    inspect.add_argument("bundle", type=Path)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(handler=_inspect)

    runtime = sub.add_parser("runtime", help="interpreter tools")
    runtime_sub = runtime.add_subparsers(dest="runtime_command", required=True,
                                         metavar="COMMAND")
    imp = runtime_sub.add_parser(
        "import", help="turn an installed CPython into a python-build-standalone style archive")
    imp.add_argument("prefix", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--sysroot", type=Path, metavar="ROOT",
                     help="the root filesystem PREFIX belongs to (e.g. an arm64 Debian root): "
                     "its libraries and symlinks are taken from there, not from this host")
    imp.set_defaults(handler=_runtime_import)

    schema = sub.add_parser("schema", help="print a JSON Schema (for editors and tests)")
    schema.add_argument("kind", choices=sorted(SCHEMAS))
    schema.set_defaults(handler=_schema)


def _lock(args: argparse.Namespace) -> int:
    from builder.locking.api import default_lock_dir, load_fresh_lock, lock_recipe, upgrade_lock
    from builder.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    lock_dir = args.lock_dir or default_lock_dir(args.recipe, recipe.name)
    if args.upgrade:
        print(upgrade_lock(recipe, lock_dir=lock_dir))
        return 0
    if args.check:
        load_fresh_lock(recipe, lock_dir=lock_dir)
        env.log(f"lock is fresh: {lock_dir}")
        return 0
    from builder.pipeline.preflight import check_cache_dir, writable_dir

    # before resolving (minutes of pip): the lock must have somewhere to go, and pip and the
    # lock's scratch (in the cache) somewhere to work
    writable_dir(lock_dir, what="lock directory",
                 hint="pass a writable directory with --lock-dir (default: lockfiles/<name>)")
    cache_dir = env.cache_dir()
    check_cache_dir(cache_dir)
    result = lock_recipe(
        recipe,
        lock_dir=lock_dir,
        cache_dir=cache_dir,
        mirror=env.pbs_mirror(),
        log=env.log,
    )
    env.log(f"lock time: {sum(result.seconds.values()):.1f}s for {len(result.lock.targets)} "
            "target(s)")
    print(result.path)
    return 0


def _build(args: argparse.Namespace) -> int:
    from builder.bundle.image import ImageKind
    from builder.pipeline import BuildOptions, build

    options = BuildOptions(
        recipe_path=args.recipe,
        targets=tuple(args.target),
        out_dir=args.out,
        cache_dir=env.cache_dir(),
        lock_dir=args.lock_dir,
        mirror=env.pbs_mirror(),
        python_from=args.python_from,
        source_date_epoch=env.source_date_epoch(),
        progress=env.progress(),
        image=None if args.image is None else ImageKind(args.image),
    )
    for bundle in build(options, log=env.log):
        print(bundle.archive)
        if bundle.image is not None:
            print(bundle.archive.with_name(bundle.image.filename))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from builder.bundle.inspect import inspect_bundle, render_manifest

    manifest = inspect_bundle(args.bundle)
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
    else:
        print(render_manifest(manifest))
    return 0


def _runtime_import(args: argparse.Namespace) -> int:
    from builder.cpython import import_runtime

    imported = import_runtime(args.prefix, args.out, source_date_epoch=0, sysroot=args.sysroot,
                              cache_dir=env.cache_dir())
    for note in imported.distro.notes() if imported.distro else ():
        print(f"note: {note}", file=sys.stderr)
    print(imported.path)
    print(f"sha256 {imported.sha256}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from importlib.resources import files

    package, filename = SCHEMAS[args.kind]
    print(files(package).joinpath(filename).read_text(encoding="utf-8"), end="")
    return 0
