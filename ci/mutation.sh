#!/bin/sh
# Mutation testing of the modules named in pyproject.toml [tool.mutmut] (not part of ./dev test:
# minutes per module on two cores). Each mutant runs only the unit tests that reach it.
#   ci/mutation.sh [PATTERN...]   e.g. ci/mutation.sh 'builder.agent.gc*' 'builder.relocate.scan*'
# Default: every configured module. Prints the score (killed / all) per module; the survivors
# are listed by `.venv/bin/mutmut results` and shown by `.venv/bin/mutmut show NAME`; the
# ones no test can kill are in tests/mutation-equivalent.md with the reason.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
./dev builder --version >/dev/null  # creates .venv on first use
[ -x .venv/bin/mutmut ] || .venv/bin/python -m pip install --quiet "mutmut>=3.3,<4"
rm -rf mutants  # a fresh copy of builder/ and tests/: results never mix two versions
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# mutmut exits non-zero when mutants survive; a run that could not start says so in its output
if ! nice -n 10 .venv/bin/mutmut run "$@" >"$log" 2>&1; then
    grep -q "mutmut_" "$log" || { tr '\r' '\n' <"$log" | tail -20 >&2; exit 1; }
fi
.venv/bin/mutmut results --all true 2>/dev/null | .venv/bin/python ci/mutation_score.py
