"""OCI commands: push a bundle to a registry, export it as an OCI image layout."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from builder.cli import env


def register(sub: Any) -> None:
    push = sub.add_parser(
        "push", help="publish a bundle as an OCI image (its root is the app directory)")
    push.add_argument("bundle", type=Path, help="the .tar.zst `builder build` printed")
    push.add_argument("ref", metavar="REGISTRY/REPO:TAG")
    push.add_argument("--plain-http", action="store_true",
                      help="talk HTTP, not HTTPS (a local test registry)")
    push.add_argument("--username", help="registry account (with --password-stdin)")
    push.add_argument("--password-stdin", action="store_true",
                      help="read the password or token from standard input")
    push.set_defaults(handler=_push)

    export = sub.add_parser("export", help="write a bundle in another format")
    export.add_argument("bundle", type=Path)
    export.add_argument("--oci", type=Path, required=True, metavar="DIR",
                        help="write (or add to) an OCI image layout in DIR")
    export.add_argument("--tag", help="the image's name in the layout (default: the version)")
    export.set_defaults(handler=_export)


def _push(args: argparse.Namespace) -> int:
    from builder.oci import parse_reference, push_bundle

    ref = parse_reference(args.ref, require_tag=True)
    credentials = env.registry_credentials(args.username, args.password_stdin)
    pushed = push_bundle(args.bundle, ref, plain_http=args.plain_http, credentials=credentials,
                         log=env.log)
    env.log(f"pushed {pushed.ref} ({pushed.uploaded} blob(s) uploaded)")
    print(pushed.pinned)
    return 0


def _export(args: argparse.Namespace) -> int:
    from builder.oci import export_layout

    exported = export_layout(args.bundle, args.oci, tag=args.tag)
    env.log(f"image {exported.image.manifest.digest}")
    print(f"{exported.layout}:{exported.tag}")
    return 0
