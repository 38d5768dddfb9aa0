"""The mutation score per module from ``mutmut results --all true`` on stdin (ci/mutation.sh)."""

import collections
import sys


def main() -> None:
    score: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in sys.stdin:
        name, _, status = line.strip().rpartition(": ")
        if name and status != "not checked":
            # mutant names: module.x_function__mutmut_N or module.xǁClassǁmethod__mutmut_N
            module = name.split(".x_")[0].split(".x\u01c1")[0]
            score[module][status] += 1
    for module, counts in sorted(score.items()):
        total, killed = sum(counts.values()), counts["killed"]
        rest = "".join(f", {n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        print(f"{module}: {killed}/{total} killed ({100 * killed // total}%){rest}")


if __name__ == "__main__":
    main()
