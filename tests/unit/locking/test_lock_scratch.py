"""``builder lock`` works in owned scratch directories under the cache (pip's reports, unpacked
sdists, the npm toolchain), never in TMPDIR: a lock killed with SIGKILL leaves them where the
next lock or build collects them (``builder.scratch``)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from factories import killed_claim
from test_resolve import PIN, RECIPE, REPORT, FakePip

from builder.locking import api
from builder.locking.resolve import resolve_target
from builder.recipe import parse_recipe_text
from builder.scratch import STAGE_DIR, owner_of


class WatchingPip(FakePip):
    """Also notes where pip was told to write its report, and whether that directory was
    owned (its owner file there) while pip ran."""

    def __init__(self) -> None:
        super().__init__(REPORT)
        self.reports: list[tuple[Path, bool]] = []

    def __call__(self, argv: Sequence[str], *, env: Mapping[str, str]
                 ) -> subprocess.CompletedProcess[str]:
        report = Path(next(a for a in argv if a.startswith("--report=")).split("=", 1)[1])
        self.reports.append((report, owner_of(report.parent).is_file()))
        return super().__call__(argv, env=env)


def test_pips_report_is_written_in_owned_scratch_under_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pip = WatchingPip()
    resolve_target(parse_recipe_text(RECIPE, path="r.toml"), PIN, cache_dir=cache, runner=pip)
    ((report, owned),) = pip.reports
    assert report.parent.parent == cache / STAGE_DIR and owned
    assert report.parent.name.startswith("builder-lock-")
    assert list((cache / STAGE_DIR).iterdir()) == []  # released: removed with its owner file


def test_a_lock_first_collects_what_a_killed_lock_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    left = killed_claim(cache / STAGE_DIR, prefix="builder-lock-")

    class Resolving(Exception):
        pass

    def resolve_pin(**_: object) -> None:
        raise Resolving

    monkeypatch.setattr(api, "resolve_pin", resolve_pin)
    logged: list[str] = []
    with pytest.raises(Resolving):
        api.lock_recipe(parse_recipe_text(RECIPE, path="r.toml"), lock_dir=tmp_path / "lock",
                        cache_dir=cache, mirror=None, log=logged.append)
    assert not left.exists() and not owner_of(left).exists()  # collected before resolving
    assert logged == [f"removed 1 leftover(s) of interrupted runs in {cache / STAGE_DIR}"]
