"""Install locked wheels into the interpreter's own site-packages (the staged prefix), as pip would.

pypa/installer writes a wheel into any scheme without running the target interpreter, so an
aarch64 bundle installs on an x86_64 build machine exactly like a native one.
"""

from builder.install.errors import CorruptWheelError, InstallConflictError
from builder.install.wheels import InstalledDist, install_wheels, python_scheme

__all__ = ["CorruptWheelError", "InstallConflictError", "InstalledDist", "install_wheels",
           "python_scheme"]
