"""Install locked wheels into the interpreter's own site-packages (the staged prefix), as pip would.

pypa/installer writes a wheel into any scheme without running the target interpreter, so an
aarch64 bundle installs on an x86_64 build machine exactly like a native one. ``source`` and
``destination`` teach it pip's layout (pip 26.3, ``pip/_internal/operations/install/wheel.py``);
``replace`` mirrors pip's uninstall-before-upgrade; ``errors`` tells a damaged wheel from a
conflict. tests/integration/test_install_like_pip.py installs real wheels both ways and compares.

Differences from ``pip install --prefix`` that remain, on purpose:

- Shebangs name the staged ``python/bin/python3.X``, pip's the Python running pip; relocate turns
  both into the same relative trampoline. A launcher path with spaces is shell-quoted (pip
  leaves it unquoted, and that launcher cannot start; build steps run launchers before
  relocation).
- ``INSTALLER`` says ``builder``; no ``REQUESTED`` or ``direct_url.json`` (a lock is installed,
  nothing is "requested" by a user or from a URL).
- ``RECORD`` lists exactly the files written; pip also keeps the wheel's row for a data script it
  skipped in favour of an entry point, naming a file that does not exist.
- Two distributions writing different bytes to one path are refused (pip keeps the last one it
  installs, so the result would hang on install order); identical bytes are fine.
- A member whose bytes contradict its RECORD hash is refused (pip does not look).
- No ``.pyc`` here: relocate compiles them (unchecked-hash, ``ddir`` /opt/apps/_). Members under
  a wheel's own ``__pycache__`` are skipped with a warning (pypa/installer; pip copies them).
- ``ENSUREPIP_OPTIONS`` is not read: pip and setuptools get pip's default launcher names.
"""

from builder.install.errors import CorruptWheelError, InstallConflictError
from builder.install.wheels import InstalledDist, install_wheels, python_scheme

__all__ = ["CorruptWheelError", "InstallConflictError", "InstalledDist", "install_wheels",
           "python_scheme"]
