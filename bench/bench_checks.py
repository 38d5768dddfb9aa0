"""What the build-time checks cost: ``builder build RECIPE`` with the recipe's ``[checks]`` as
shipped against the same recipe with every check off, side by side, and the checks phase alone.

Both variants use the same lock (``[checks]`` does not enter the lock) and the same interpreter
archive, a fresh ``--out`` each run (no bundle cache hit; the wheel and sdist-wheel caches warm),
interleaved run by run. The "checks" row is the phase's own time from the build log
(``checks: N.Ns``), the per-check rows likewise (imports, each command, the service's first
answer).

    python bench/bench_checks.py [--repeats 3] [--python-from ARCHIVE] [RECIPE ...]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

from _common import ROOT, isolated_env, med, ratio, secs, table, timed, tool
from bench_build import import_runtime, log

CHECKS_OFF = "\n[checks]\nimports = false\ncommands = []\nservice = false\n"
PHASE = re.compile(r"^(?P<phase>[a-z]+): (?P<seconds>\d+\.\d+)s$")


def unchecked_copy(recipe: Path, work: Path) -> Path:
    """The recipe without checks, in a project folder of its own, beside a copy of its lock."""
    text = recipe.read_text(encoding="utf-8")
    if "\n[checks]" in text:  # drop the shipped table (it ends at the next table or the end)
        head, _, rest = text.partition("\n[checks]")
        following = re.search(r"^\[", rest, flags=re.M)
        text = head + ("\n" + rest[following.start():] if following else "")
    project = work / "unchecked"
    (project / "recipes").mkdir(parents=True)
    name = recipe.stem
    shutil.copytree(ROOT / "lockfiles" / name, project / "lockfiles" / name)
    shutil.copytree(ROOT / "recipes" / "icons", project / "recipes" / "icons")  # app.ui.icon
    copy = project / "recipes" / recipe.name
    copy.write_text(text + CHECKS_OFF, encoding="utf-8")
    return copy


def build(recipe: Path, archive: Path, out: Path, env: dict[str, str]) -> tuple[float, str]:
    seconds, proc = timed([tool("builder"), "build", str(recipe), "--python-from", str(archive),
                           "--out", str(out)], env=env)
    return seconds, proc.stderr


def phase_seconds(stderr: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        match = PHASE.match(line.strip())
        if match:
            found[match["phase"]] = float(match["seconds"])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", type=Path,
                        default=[ROOT / "recipes/jupyter-6.toml",
                                 ROOT / "recipes/tensorboard.toml"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python-from", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-checks-"))
    try:
        archive = args.python_from or import_runtime(work / "runtime", "3.11.7")
        env = isolated_env(BUILDER_CACHE_DIR=str(work / "builder-cache"))
        rows = []
        for given in args.recipes:
            recipe = given.resolve()
            unchecked = unchecked_copy(recipe, work / recipe.stem)
            log(f"{recipe.name}: priming the caches (untimed)")
            build(recipe, archive, work / "prime" / recipe.stem, env)
            with_checks: list[float] = []
            without: list[float] = []
            check_phase: list[float] = []
            for i in range(args.repeats):
                seconds, stderr = build(recipe, archive, work / f"on-{recipe.stem}-{i}", env)
                with_checks.append(seconds)
                check_phase.append(phase_seconds(stderr).get("checks", 0.0))
                seconds, stderr = build(unchecked, archive, work / f"off-{recipe.stem}-{i}", env)
                if "checks" in phase_seconds(stderr):
                    raise SystemExit("error: the unchecked variant ran checks")
                without.append(seconds)
                log(f"{recipe.name}: repeat {i + 1}/{args.repeats} done")
            base = med(without)
            rows += [
                [f"{recipe.stem}: build, checks off", secs(base), secs(min(without)), "1.00"],
                [f"{recipe.stem}: build, checks on", secs(med(with_checks)),
                 secs(min(with_checks)), ratio(med(with_checks), base)],
                [f"{recipe.stem}:   the checks phase alone", secs(med(check_phase)),
                 secs(min(check_phase)), ratio(med(check_phase), base)],
            ]
        print(f"# bench_checks {datetime.date.today()} {platform.machine()} "
              f"(median of {args.repeats}, interleaved; ratio vs checks off)")
        print(table(["variant", "median s", "min s", "vs checks off"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
