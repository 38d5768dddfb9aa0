# ruff: noqa: E501 (one mutant a line reads best)
"""Mutants of builder.check's refusals: each one removed in turn must fail the unit tests.

    .venv/bin/python tests/unit/check/mutants.py      (a few minutes; prints survivors)

Not a test module (pytest does not collect it): it rewrites source files while it runs, and
puts each back before the next.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
M = [
 ("builder/check/tree.py", '            os.utime(root / parent, ns=(mtime, mtime), follow_symlinks=False)', '            pass'),
 ("builder/check/tree.py", 'return parts[-1] == "__pycache__" or (len(parts) > 1 and parts[-2] == "__pycache__"', 'return True or (len(parts) > 1 and parts[-2] == "__pycache__"'),
 ("builder/check/tree.py", 'and parts[-1].endswith(".pyc"))', 'and True)'),
 ("builder/check/tree.py", '        elif any(target.iterdir()):\n            continue', '        elif False:\n            continue'),
 ("builder/check/run.py", '    undone = undo_bytecode(root, before, after)', '    undone = ()'),
 ("builder/check/tree.py", '        if parent in before:', '        if True:'),
 ("builder/check/modules.py", 'if parts and all(_IDENTIFIER.match(p) for p in parts)}', 'if parts}'),
 ("builder/check/modules.py", 'r"^(?P<name>[^.]+)\\.(?:cpython-\\d+[^.]*|abi3)\\.so$"', 'r"^(?P<name>[^.]+)\\..*so$"'),
 ("builder/check/modules.py", 'return tuple(public or names)', 'return tuple(names)'),
 ("builder/check/modules.py", '    "tests": "a test suite', '    "testsX": "a test suite'),
 ("builder/check/modules.py", '    "matplotlib_inline": ', '    "matplotlib_inlineX": '),
 ("builder/check/modules.py", 'for end in range(len(parts), 0, -1):', 'for end in range(len(parts), len(parts) - 1, -1):'),
 ("builder/check/service.py", 'if field != "ports[0]" or spec or conversion:', 'if field != "ports[0]":'),
 ("builder/check/service.py", 'if field != "ports[0]" or spec or conversion:', 'if False:'),
 ("builder/check/service.py", 'if not url_template.startswith(URL_PREFIX):', 'if False:'),
 ("builder/check/service.py", 'return 200 <= status < 400 or status in AUTH_STATUSES', 'return 200 <= status < 500'),
 ("builder/check/service.py", 'return 200 <= status < 400 or status in AUTH_STATUSES', 'return 200 <= status < 400'),
 ("builder/check/service.py", 'if launcher:  #', 'if False:  #'),
 ("builder/check/service.py", 'if arg == root or arg.startswith(root + "/"):', 'if arg.startswith(root):'),
 ("builder/check/service.py", '        if left <= 0:\n', '        if False:\n'),
 ("builder/check/service.py", '        if code is not None:\n', '        if False:\n'),
 ("builder/check/plan.py", 'if not command:\n', 'if False:\n'),
 ("builder/check/plan.py", 'if not recipe.checks.service:', 'if False:'),
 ("builder/check/plan.py", 'if recipe.service.protocol is not Protocol.HTTP:', 'if False:'),
 ("builder/check/plan.py", 'if not record.is_file():\n            continue', 'if False:\n            continue'),
 ("builder/check/plan.py", 'if checks.imports:', 'if True:'),
 ("builder/check/run.py", 'if not (resolved.is_file() and os.access(resolved, os.X_OK)):', 'if not resolved.exists():'),
 ("builder/check/run.py", '    if found is None:\n', '    if False:\n'),
 ("builder/check/run.py", '    if lines:\n        raise BuilderError(', '    if False:\n        raise BuilderError('),
 ("builder/check/run.py", '    if failed is None:\n', '    if False:\n'),
 ("builder/check/run.py", '    if failed:\n', '    if False:\n'),
 ("builder/check/run.py", '    if outcome.returncode != 0:\n', '    if False:\n'),
 ("builder/check/run.py", '        if waited.status is None:\n', '        if False:\n'),
 ("builder/check/run.py", 'if any(PKG_RESOURCES in line', 'if False and any(PKG_RESOURCES in line'),
 ("builder/check/run.py", 'failed = _read_failures(result) if outcome.returncode == 0 else None', 'failed = _read_failures(result)'),
 ("builder/check/tree.py", '    if checked.exists():\n', '    if False:\n'),
 ("builder/check/tree.py", '        checked.rename(bundle_root)', '        pass'),
 ("builder/sandbox.py", '    kill_group(proc)\n    proc.wait()\n\n\ndef kill_group', '    proc.wait()\n\n\ndef kill_group'),
 ("builder/sandbox.py", '            os.killpg(proc.pid, signal.SIGTERM)', '            pass'),
]
bad = 0
for path, old, new in M:
    p = ROOT / path
    text = p.read_text()
    if old not in text:
        print("MISSING", path, old[:60])
        bad += 1
        continue
    p.write_text(text.replace(old, new, 1))
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                            "tests/unit/check", "tests/unit/sandbox"], check=False,
                           capture_output=True, text=True, timeout=90, cwd=ROOT)
    except subprocess.TimeoutExpired:
        r = subprocess.CompletedProcess([], 124)
    finally:
        p.write_text(text)
    status = "killed" if r.returncode != 0 else "SURVIVED"
    if r.returncode == 0:
        bad += 1
    print(status, path, old[:70].replace("\n", " "))
print("survivors/missing:", bad)
sys.exit(1 if bad else 0)
