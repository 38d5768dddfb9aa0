"""Consumer-side commands: ``builder index DIR`` and ``builder agent ...`` (install, check,
mounts, gc, list, pin/unpin, lease/release, verify)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from builder.cli import env
from builder.errors import UsageError
from builder.host import HOST_TRIPLE

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

CHECK_EPILOG = """\
exit codes:
  0  compatible
  3  incompatible (the reasons say why, in numbers)
  4  cannot tell (e.g. no C library found in the image)
  1  error (unreadable bundle or root), 2  usage
"""

GC_EPILOG = """\
exit codes: 0 the store fits the budget; 3 it still does not (pinned or leased entries,
or entries busy right now, are larger than the budget); 1 error, 2 usage.
"""


def byte_size(text: str) -> int:
    """``1234``, ``512M``, ``10G``, ``1.5GiB``: binary units (K = 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 20G, 1073741824)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def register(sub: Any) -> None:
    index = sub.add_parser("index", help="write DIR/index.json listing every bundle in DIR")
    index.add_argument("directory", type=Path)
    index.set_defaults(handler=_index)

    agent = sub.add_parser("agent", help="node side: install, check, mount, collect garbage")
    cmds = agent.add_subparsers(dest="agent_command", required=True, metavar="COMMAND")
    _register_install(cmds)
    _register_check(cmds)
    _register_store_commands(cmds)


def store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, required=True, metavar="DIR",
                        help="the node's bundle store (created when missing)")


def _register_install(cmds: Any) -> None:
    install = cmds.add_parser(
        "install", help="install a bundle into the store (sha256 checked first), print its path",
        description="SOURCE is a path, an http(s):// URL, NAME[@VERSION] from --index, or "
        "oci://REGISTRY/REPO@sha256:DIGEST (an image `builder push` made). The sha256 comes "
        "from the catalog, the sidecar .json beside the archive, or --sha256; for an image it "
        "is the manifest digest in the reference (or --sha256 with a REPO:TAG reference); "
        "without one nothing is installed.")
    install.add_argument("source", metavar="SOURCE")
    store_arg(install)
    install.add_argument("--index", metavar="URL|PATH", help="catalog (index.json or its dir)")
    install.add_argument("--sha256", metavar="HEX",
                         help="the archive's expected sha256 (oci://: the manifest digest)")
    install.add_argument("--target", metavar="TRIPLE",
                         help="target to pick from the catalog (default: this machine's, gnu)")
    install.add_argument("--max-unpacked-bytes", type=byte_size, metavar="SIZE",
                         help="refuse bundles larger than this unpacked (default 32G)")
    install.add_argument("--lock-timeout", type=float, default=3600.0, metavar="SECONDS",
                         help="how long to wait for another agent installing the same bundle")
    install.add_argument("--check-all", action="store_true",
                         help="over an existing entry: read every file to check it (default: "
                         "only files changed since the install, by ctime)")
    install.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS",
                         help="downloads: time to connect and get the response (default 30)")
    install.add_argument("--read-timeout", type=float, default=30.0, metavar="SECONDS",
                         help="downloads: longest silence between two reads (default 30)")
    install.add_argument("--deadline", type=float, default=3600.0, metavar="SECONDS",
                         help="downloads: the whole transfer (default 3600)")
    install.add_argument("--min-rate", type=byte_size, default=10 << 10, metavar="SIZE",
                         help="downloads: bytes per second, averaged over each minute, below "
                         "which a transfer is given up (default 10K)")
    install.add_argument("--plain-http", action="store_true",
                         help="oci://: talk HTTP, not HTTPS (a local test registry)")
    install.add_argument("--username", help="oci://: registry account (with --password-stdin)")
    install.add_argument("--password-stdin", action="store_true",
                         help="oci://: read the password or token from standard input")
    how = install.add_mutually_exclusive_group()
    how.add_argument("--extract", action="store_true",
                     help="extract the archive even when the bundle has a mountable image")
    how.add_argument("--mount", choices=["kernel", "fuse"], default=None,
                     help="mount the bundle's image this way (default: a kernel loop mount "
                     "where the agent may, squashfuse otherwise, else extraction)")
    install.add_argument("--json", action="store_true", help="machine-readable output")
    install.set_defaults(handler=_install)


def _register_check(cmds: Any) -> None:
    check = cmds.add_parser(
        "check", help="does a bundle fit a target image (arch, libc family, glibc floor, "
        "libstdc++ for a Node.js app)?",
        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("bundle", metavar="BUNDLE",
                       help=".tar.zst, sidecar .json, entry directory, or NAME with --store")
    check.add_argument("--rootfs", type=Path, metavar="PATH",
                       help="the image's root filesystem, read for its arch, libc and libstdc++")
    check.add_argument("--arch", help="the image's architecture (with --glibc or --musl)")
    libc = check.add_mutually_exclusive_group()
    libc.add_argument("--glibc", metavar="X.Y", help="the image's glibc version")
    libc.add_argument("--musl", action="store_true", help="the image uses musl")
    check.add_argument("--libstdcxx", metavar="X.Y.Z",
                       help="with --arch: the newest GLIBCXX_ the image's libstdc++.so.6 defines "
                       "(e.g. 3.4.30); without it a bundle's libstdc++ need is not checked")
    check.add_argument("--store", type=Path, metavar="DIR", help="resolve BUNDLE by name here")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(handler=_check)


def _register_store_commands(cmds: Any) -> None:
    mounts = cmds.add_parser("mounts", help="the read-only mounts that inject an installed app")
    mounts.add_argument("names", nargs="+", metavar="NAME",
                        help="NAME, NAME@VERSION or a sha256 prefix (several: --format backendai)")
    store_arg(mounts)
    mounts.add_argument("--format", choices=["json", "docker", "k8s", "backendai"],
                        default="json")
    mounts.add_argument("--service-defs-dir", metavar="DIR", default=None,
                        help="where service-def.json goes (default: /etc/backend.ai/service-defs, "
                        "where Backend.AI's kernel runner reads; the App Injection proposal's "
                        "is /opt/kernel/service-defs)")
    mounts.add_argument("--image-volume", action="store_true",
                        help="k8s: mount app/ as an ImageVolume of the pinned image the entry "
                        "was installed from (service-def.json stays a hostPath)")
    mounts.add_argument("--image", metavar="REGISTRY/REPO@sha256:DIGEST",
                        help="k8s: the image for --image-volume (implies it); default: the "
                        "oci:// reference the entry was installed from")
    mounts.set_defaults(handler=_mounts)

    gc = cmds.add_parser("gc", help="evict least recently used entries until the store fits",
                         epilog=GC_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    store_arg(gc)
    gc.add_argument("--max-bytes", type=byte_size, required=True, metavar="SIZE",
                    help="budget, e.g. 20G (binary units)")
    gc.add_argument("--dry-run", action="store_true", help="say what would be evicted")
    gc.add_argument("--json", action="store_true", help="machine-readable output")
    gc.set_defaults(handler=_gc)

    listing = cmds.add_parser("list", help="entries, sizes, last use, pins and leases")
    store_arg(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    for name, helptext in (("pin", "never evict this entry"), ("unpin", "undo pin"),
                           ("verify", "check an entry's files (contents, modes, extra files) "
                            "against its bundle's RECORD; exit 1 and name each difference")):
        cmd = cmds.add_parser(name, help=helptext)
        cmd.add_argument("name", metavar="NAME", help="NAME, NAME@VERSION or a sha256 prefix")
        store_arg(cmd)
        cmd.set_defaults(handler={"pin": _pin, "unpin": _unpin, "verify": _verify}[name])
        if name == "verify":
            cmd.add_argument("--elf", action="store_true",
                             help="also read every ELF file: architecture and glibc floor")
            cmd.add_argument("--json", action="store_true", help="machine-readable output")
            cmd.add_argument("--quick", action="store_true",
                             help="read only files changed since the install (by ctime), as "
                             "`install` does over an existing entry")

    for name, helptext in (("lease", "mark an entry in use while process PID lives"),
                           ("release", "drop a lease")):
        cmd = cmds.add_parser(name, help=helptext)
        cmd.add_argument("name", metavar="NAME", help="NAME, NAME@VERSION or a sha256 prefix")
        store_arg(cmd)
        cmd.add_argument("--pid", type=int, required=True)
        cmd.set_defaults(handler=_lease if name == "lease" else _release)


def _store(args: argparse.Namespace, **kwargs: Any) -> Any:
    from builder.agent.store import Store

    return Store(root=args.store, **kwargs)


def _index(args: argparse.Namespace) -> int:
    from builder.catalog import write_index

    path, catalog = write_index(args.directory, log=env.log)
    env.log(f"{len(catalog.entries)} bundle(s) indexed")
    print(path)
    return 0


def _install(args: argparse.Namespace) -> int:
    from builder.agent.extract import Limits
    from builder.agent.install import InstallOptions, install
    from builder.agent.mount import MountMethod
    from builder.agent.source import resolve_source
    from builder.net import Deadlines, NetTransport

    for flag in ("connect_timeout", "read_timeout", "deadline"):
        if getattr(args, flag) <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be more than 0 seconds")
    deadlines = Deadlines(connect=args.connect_timeout, read=args.read_timeout,
                          total=args.deadline, min_rate=args.min_rate)
    transport = NetTransport(deadlines)
    source = resolve_source(args.source, index=args.index, sha256=args.sha256,
                            target=args.target or HOST_TRIPLE, transport=transport)
    if source.image is None and (args.plain_http or args.username or args.password_stdin):
        raise UsageError("--plain-http, --username and --password-stdin are for oci:// sources")
    oci = None  # the OCI client is imported only for oci:// sources
    if source.image is not None:
        from builder.agent.oci import OciOptions
        from builder.oci.http import UrllibHttp

        credentials = env.registry_credentials(args.username, args.password_stdin)
        oci = OciOptions(plain_http=args.plain_http, credentials=credentials,
                         http=UrllibHttp(timeout=args.connect_timeout, deadlines=deadlines))
    limits = Limits(max_unpacked_bytes=args.max_unpacked_bytes) \
        if args.max_unpacked_bytes else Limits()
    result = install(source, _store(args, lock_timeout=args.lock_timeout), transport=transport,
                     options=InstallOptions(progress=env.progress(), limits=limits, oci=oci,
                                            quick_check=not args.check_all,
                                            extract=args.extract,
                                            mount=MountMethod(args.mount) if args.mount
                                            else None),
                     log=env.log)
    if result.repaired:
        env.log(f"repaired {result.record.name} {result.record.version}: the installed entry "
                f"differed from its bundle in {len(result.repaired)} way(s):")
        for difference in result.repaired[:20]:
            env.log(f"  {difference}")
        if len(result.repaired) > 20:
            env.log(f"  ... and {len(result.repaired) - 20} more")
    if args.json:
        r = result.record
        print(json.dumps({"path": str(result.path), "fresh": result.fresh, "sha256": r.sha256,
                          "name": r.name, "version": r.version, "target": r.target,
                          "source": r.source, "oci_reference": r.oci_reference,
                          "image": r.image, "mounted_with": r.mounted_with,
                          "repaired": [d.to_dict() for d in result.repaired]},
                         indent=2, sort_keys=True))
    else:
        print(result.path)
    return 0


def _check(args: argparse.Namespace) -> int:
    from builder.agent.compat.lookup import load_bundle_needs
    from builder.agent.compat.model import image_from_numbers
    from builder.agent.compat.probe import probe_rootfs
    from builder.agent.compat.render import render_result, result_to_dict
    from builder.agent.compat.verdict import check_compat

    numbers = args.glibc is not None or args.musl
    if args.rootfs is not None and (numbers or args.arch or args.libstdcxx is not None):
        raise UsageError("give either --rootfs PATH or --arch A with --glibc X.Y/--musl "
                         "(and --libstdcxx X.Y.Z)")
    if args.rootfs is None:
        if not (numbers and args.arch):
            raise UsageError("say what the image is: --rootfs PATH, or --arch A with "
                             "--glibc X.Y or --musl")
        if args.glibc is not None and not re.fullmatch(r"\d+\.\d+(\.\d+)?", args.glibc):
            raise UsageError(f"--glibc takes a version like 2.31, not {args.glibc!r}")
        if args.libstdcxx is not None and not re.fullmatch(r"(GLIBCXX_)?\d+\.\d+(\.\d+)?",
                                                           args.libstdcxx):
            raise UsageError(f"--libstdcxx takes a version like 3.4.30, not {args.libstdcxx!r}")
        image = image_from_numbers(arch=args.arch, libc="musl" if args.musl else "gnu",
                                   version=args.glibc, libstdcxx=args.libstdcxx)
    else:
        image = probe_rootfs(args.rootfs)
    needs = load_bundle_needs(args.bundle, store_root=args.store)
    result = check_compat(needs, image)
    if args.json:
        print(json.dumps(result_to_dict(result), indent=2, sort_keys=True))
    else:
        print(render_result(result))
    return result.exit_code


def _mounts(args: argparse.Namespace) -> int:
    from builder.agent.mounts import (
        IMAGE_VOLUME_NOTE,
        SERVICE_DEFS_ROOT,
        MountFormat,
        backendai_mounts,
        mounts_for,
        pinned_image,
        render_plan,
        service_defs_dir,
    )

    fmt = MountFormat(args.format)
    image_volume = args.image_volume or args.image is not None
    if image_volume and fmt is not MountFormat.K8S:
        raise UsageError("--image-volume and --image go with --format k8s")
    if len(args.names) > 1 and fmt is not MountFormat.BACKENDAI:
        raise UsageError(f"several apps go with --format backendai, not {fmt}",
                         hint="run the command once per app, or use --format backendai")
    defs_dir = (SERVICE_DEFS_ROOT if args.service_defs_dir is None
                else service_defs_dir(args.service_defs_dir))
    store = _store(args)
    plans = [mounts_for(store, name, defs_dir=defs_dir) for name in args.names]
    if len(plans) > 1:
        for plan in plans:
            for note in plan.notes:
                env.log(f"note: {plan.name}: {note}")
        print(json.dumps(backendai_mounts(plans), indent=2, sort_keys=True))
        return 0
    plan = plans[0]
    text = render_plan(plan, fmt, image_volume=image_volume, image=args.image)
    notes = list(plan.notes)
    if image_volume:
        image = pinned_image(plan, args.image)
        notes.append(IMAGE_VOLUME_NOTE.format(image=image))
        if plan.image is not None and image != plan.image:
            notes.append(f"the entry was installed from {plan.image}, not {image}")
    for note in notes:
        env.log(f"note: {note}")
    print(text)
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _gc(args: argparse.Namespace) -> int:
    from builder.agent.gc import collect_garbage

    report = collect_garbage(_store(args), args.max_bytes, dry_run=args.dry_run)
    verb = "would evict" if report.dry_run else "evicted"
    if args.json:
        print(json.dumps({
            "dry_run": report.dry_run, "max_bytes": args.max_bytes,
            "before_bytes": report.plan.total_bytes, "after_bytes": report.after_bytes,
            "freed_bytes": report.freed_bytes, "fits": report.fits,
            "evicted": [{"name": s.record.name, "version": s.record.version,
                         "sha256": s.record.sha256, "bytes": s.record.disk_bytes}
                        for s in report.evicted],
            "skipped": [{"sha256": s.record.sha256, "why": why} for s, why in report.skipped],
            "protected": [s.record.sha256 for s in report.plan.protected],
            "leftovers_removed": report.leftovers_removed,
        }, indent=2, sort_keys=True))
    else:
        for state in report.evicted:
            print(f"{verb} {state.record.name} {state.record.version} "
                  f"({state.record.sha256[:12]}, {_size(state.record.disk_bytes)})")
        for state, why in report.skipped:
            print(f"kept {state.record.name} {state.record.version}: {why}")
        print(f"freed {_size(report.freed_bytes)}: {_size(report.plan.total_bytes)} -> "
              f"{_size(report.after_bytes)} (budget {_size(args.max_bytes)})")
    if not report.fits:
        env.log("warning: the store is still over budget (pinned, leased or busy entries)")
        return 3
    return 0


def _list(args: argparse.Namespace) -> int:
    import datetime

    states = _store(args).states()
    if args.json:
        print(json.dumps([{**s.record.to_dict(), "path": str(s.path), "last_use": s.last_use,
                           "pinned": s.pinned, "leases": list(s.leases)} for s in states],
                         indent=2, sort_keys=True))
        return 0
    for s in sorted(states, key=lambda s: (s.record.name, s.record.version)):
        used = datetime.datetime.fromtimestamp(s.last_use, tz=datetime.UTC)
        flags = ("pinned " if s.pinned else "") + \
            (f"leased by {','.join(map(str, s.leases))}" if s.leases else "")
        print(f"{s.record.name:<20} {s.record.version:<10} {s.record.sha256[:12]}  "
              f"{_size(s.record.disk_bytes):>10}  last use {used:%Y-%m-%d %H:%M:%S}Z  "
              f"{flags}".rstrip())
    total = sum(s.record.disk_bytes for s in states)
    env.log(f"{len(states)} entr{'y' if len(states) == 1 else 'ies'}, {_size(total)}")
    return 0


def _pin(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.resolve(args.name)
    store.pin(record.sha256)
    print(f"pinned {record.name} {record.version} ({record.sha256[:12]})")
    return 0


def _unpin(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.resolve(args.name)
    was = store.unpin(record.sha256)
    print(f"{'unpinned' if was else 'was not pinned:'} {record.name} {record.version}")
    return 0


def _lease(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.resolve(args.name)
    print(store.add_lease(record.sha256, args.pid))
    return 0


def _release(args: argparse.Namespace) -> int:
    store = _store(args)
    record = store.resolve(args.name)
    was = store.release_lease(record.sha256, args.pid)
    print(f"{'released' if was else 'no lease of PID'} {args.pid} on {record.name}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from builder.agent.verify import elf_problems, entry_differences

    store = _store(args)
    record = store.resolve(args.name)
    entry = store.entry_path(record.sha256)
    differences = entry_differences(record, entry, quick=args.quick)
    elf = elf_problems(entry) if args.elf else []
    if args.json:
        print(json.dumps({"name": record.name, "version": record.version,
                          "sha256": record.sha256, "path": str(entry),
                          "ok": not (differences or elf),
                          "differences": [d.to_dict() for d in differences],
                          "elf_problems": elf}, indent=2, sort_keys=True))
    else:
        for difference in differences:
            print(f"{record.name}: {difference}")
        for problem in elf:
            print(f"{record.name}: {problem}")
        if not (differences or elf):
            print(f"ok: {record.name} {record.version} ({record.files} files)")
    if differences or elf:
        if not args.json:
            env.log(f"{record.name} {record.version}: {len(differences) + len(elf)} "
                    "difference(s); `builder agent install` of the same bundle repairs the entry")
        return 1
    return 0
