"""The ``builder`` command: parse into typed options, call one library function, map errors.

Each command group lives in its own module exposing ``register(subparsers)``; a parser sets
``handler`` (``args -> exit code``). Environment is read only in this package (see ``env``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from builder import __version__
from builder.errors import BuilderError, environment_error

COMMAND_MODULES = ("builder.cli.core", "builder.cli.release", "builder.cli.oci",
                   "builder.cli.agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="builder",
        description="Build relocatable, reproducible app bundles from TOML recipes.",
    )
    parser.add_argument("--version", action="version", version=f"builder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
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
    except OSError as exc:  # the environment refused something no stage anticipated
        error = environment_error(exc)
        print(f"error: {error.message}", file=sys.stderr)
        return error.exit_code


def entry() -> None:
    from builder.cli.signals import run_stoppable

    sys.exit(run_stoppable(main))
