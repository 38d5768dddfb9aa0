"""Make ``tests/factories.py`` importable from every test directory (tests/ is not a package)."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
