"""The ``builder`` command: parse into typed options, call one library function, map errors.

Environment is read here and only here: BUILDER_CACHE_DIR, BUILDER_PBS_MIRROR,
SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from builder import __version__
from builder.errors import BuilderError, UsageError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cache_dir() -> Path:
    value = os.environ.get("BUILDER_CACHE_DIR")
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("builder"))


def _source_date_epoch() -> int:
    from builder.bundle.archive import DEFAULT_MTIME

    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return DEFAULT_MTIME
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a non-negative integer, not {value!r}")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="builder",
        description="Build relocatable, reproducible app bundles from TOML recipes.",
    )
    parser.add_argument("--version", action="version", version=f"builder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lock = sub.add_parser("lock", help="resolve and pin a recipe for every target")
    lock.add_argument("recipe", type=Path)
    lock.add_argument("--lock-dir", type=Path, help="default: lockfiles/<name> beside recipes/")

    build = sub.add_parser("build", help="build the bundle of a recipe")
    build.add_argument("recipe", type=Path)
    build.add_argument("--target", action="append", default=[],
                       help="target triple (repeatable, or 'all'); default: this machine's")
    build.add_argument("--out", type=Path, default=Path("dist"), help="default: dist/")
    build.add_argument("--python-from", type=Path, metavar="ARCHIVE|PREFIX",
                       help="use this interpreter archive or installed CPython instead of "
                       "downloading python-build-standalone")
    build.add_argument("--lock-dir", type=Path)

    inspect = sub.add_parser("inspect", help="print the manifest of a bundle")
    inspect.add_argument("bundle", type=Path)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")

    runtime = sub.add_parser("runtime", help="interpreter tools")
    runtime_sub = runtime.add_subparsers(dest="runtime_command", required=True,
                                         metavar="COMMAND")
    imp = runtime_sub.add_parser(
        "import", help="turn an installed CPython into a python-build-standalone style archive")
    imp.add_argument("prefix", type=Path)
    imp.add_argument("--out", type=Path, required=True)

    schema = sub.add_parser("schema", help="print a JSON Schema (for editors and tests)")
    schema.add_argument("kind", choices=["recipe", "manifest"])
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "lock":
        from builder.lock.api import default_lock_dir, lock_recipe
        from builder.recipe import load_recipe

        recipe = load_recipe(args.recipe)
        result = lock_recipe(
            recipe,
            lock_dir=args.lock_dir or default_lock_dir(args.recipe, recipe.name),
            cache_dir=_cache_dir(),
            mirror=os.environ.get("BUILDER_PBS_MIRROR") or None,
            log=_log,
        )
        _log(f"lock time: {sum(result.seconds.values()):.1f}s for "
             f"{len(result.seconds)} target(s)")
        print(result.path)
        return 0
    if args.command == "build":
        from builder.pipeline import BuildOptions, build

        options = BuildOptions(
            recipe_path=args.recipe,
            targets=tuple(args.target),
            out_dir=args.out,
            cache_dir=_cache_dir(),
            lock_dir=args.lock_dir,
            mirror=os.environ.get("BUILDER_PBS_MIRROR") or None,
            python_from=args.python_from,
            source_date_epoch=_source_date_epoch(),
            progress=sys.stderr.isatty(),
        )
        for bundle in build(options, log=_log):
            print(bundle.archive)
        return 0
    if args.command == "inspect":
        from builder.bundle.inspect import inspect_bundle, render_manifest

        manifest = inspect_bundle(args.bundle)
        if args.json:
            print(json.dumps(manifest, indent=2, sort_keys=True))
        else:
            print(render_manifest(manifest))
        return 0
    if args.command == "runtime":
        from builder.runtime import import_runtime

        imported = import_runtime(args.prefix, args.out, source_date_epoch=0)
        print(imported.path)
        print(f"sha256 {imported.sha256}")
        return 0
    if args.command == "schema":
        from importlib.resources import files

        package = {"recipe": "builder.recipe", "manifest": "builder.bundle"}[args.kind]
        print(files(package).joinpath(f"{args.kind}.schema.json").read_text(encoding="utf-8"),
              end="")
        return 0
    raise UsageError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BuilderError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `builder inspect ... | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def entry() -> None:
    sys.exit(main())
