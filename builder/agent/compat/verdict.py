"""The verdict of ``builder agent check``: pure, and it says why, in numbers."""

from __future__ import annotations

from builder.agent.compat.model import BundleNeeds, CheckResult, ImageFacts, Verdict
from builder.elf.read import LIBSTDCXX, format_version

#: what a user installs to get ``libstdc++.so.6`` (the hint of a missing one)
LIBSTDCXX_HINT = ("install libstdc++6 in the image (Debian, Ubuntu; the package is called "
                  "libstdc++ on Alpine, Fedora and RHEL)")


def _v(version: tuple[int, ...] | None) -> str:
    return format_version(version) if version else "?"


def _libc_name(libc: str | None, version: tuple[int, ...] | None) -> str:
    if libc is None:
        return "no C library"
    name = "glibc" if libc == "gnu" else "musl"
    return f"{name} {_v(version)}" if version else f"{name} (version unknown)"


def check_compat(bundle: BundleNeeds, image: ImageFacts) -> CheckResult:
    bad: list[str] = []
    unsure: list[str] = []
    good: list[str] = []
    matches = None
    if image.arch is None:
        unsure.append("cannot tell the image's architecture (no ELF /bin/sh or C library)")
    elif image.arch != bundle.arch:
        bad.append(f"the bundle is built for {bundle.arch}, the image is {image.arch} "
                   f"(from {image.arch_from})")
    else:
        matches = f"architecture {image.arch} matches"
    needs = (f"glibc {_v(bundle.glibc_floor)}" if bundle.libc == "gnu" and bundle.glibc_floor
             else "glibc" if bundle.libc == "gnu" else "musl")
    culprit = f" ({bundle.glibc_floor_file})" if bundle.glibc_floor_file else ""
    if image.libc is None:
        unsure.append(f"no C library found in the image (looked for libc.so.6 and "
                      f"ld-musl-*.so.1 in {', '.join(image.looked_in)}); the bundle needs "
                      f"{needs}")
    elif image.libc != bundle.libc:
        bad.append(f"the bundle needs {needs}, the image has "
                   f"{_libc_name(image.libc, image.libc_version)} (from {image.libc_from})")
    elif bundle.libc == "gnu" and bundle.glibc_floor is not None:
        if image.libc_version is None:
            unsure.append(f"needs glibc {_v(bundle.glibc_floor)}{culprit}, the image's glibc "
                          f"version is unknown ({image.libc_from})")
        elif image.libc_version < bundle.glibc_floor:
            bad.append(f"needs glibc {_v(bundle.glibc_floor)}{culprit}, image has "
                       f"{_v(image.libc_version)} (from {image.libc_from})")
        else:
            good.append(f"needs glibc {_v(bundle.glibc_floor)}, image has "
                        f"{_v(image.libc_version)} (from {image.libc_from})")
    else:
        good.append(f"needs {needs}, image has {_libc_name(image.libc, image.libc_version)}")
    notes: list[str] = []
    hints = _check_libstdcxx(bundle, image, bad=bad, unsure=unsure, good=good, notes=notes)
    verdict = (Verdict.INCOMPATIBLE if bad else Verdict.UNKNOWN if unsure
               else Verdict.COMPATIBLE)
    if matches:
        good.append(matches)
    return CheckResult(verdict=verdict, reasons=tuple(bad + unsure + notes + good),
                       bundle=bundle, image=image, hints=hints)


def _check_libstdcxx(bundle: BundleNeeds, image: ImageFacts, *, bad: list[str],
                     unsure: list[str], good: list[str], notes: list[str]) -> tuple[str, ...]:
    """The libstdc++ need, when the bundle has one: adds reasons, returns hints."""
    if bundle.libstdcxx is None:
        return ()
    need = f"GLIBCXX_{_v(bundle.libstdcxx)}"
    who = f" ({bundle.libstdcxx_for})" if bundle.libstdcxx_for else ""
    if not image.libstdcxx_checked:
        notes.append(f"needs {LIBSTDCXX} with {need}{who}: not checked (give --libstdcxx X.Y.Z, "
                     f"the newest GLIBCXX_ the image's {LIBSTDCXX} defines, or --rootfs)")
    elif image.libstdcxx_from is None:
        bad.append(f"needs {LIBSTDCXX} with {need}{who}, the image has no {LIBSTDCXX} "
                   f"(looked in {', '.join(image.looked_in)})")
        return (LIBSTDCXX_HINT,)
    elif image.libstdcxx is None:
        unsure.append(f"needs {LIBSTDCXX} with {need}{who}, the image's {LIBSTDCXX} defines no "
                      f"GLIBCXX_ version ({image.libstdcxx_from})")
    elif image.libstdcxx < bundle.libstdcxx:
        bad.append(f"needs {LIBSTDCXX} with {need}{who}, image has GLIBCXX_"
                   f"{_v(image.libstdcxx)} (from {image.libstdcxx_from})")
    else:
        good.append(f"needs {LIBSTDCXX} with {need}, image has GLIBCXX_{_v(image.libstdcxx)} "
                    f"(from {image.libstdcxx_from})")
    return ()
