"""Moved to :mod:`builder.tarsafe` (the foundation: agent, oci, fetch and sdist use it).

Only ``builder/agent/extract.py`` still imports these names from here: it is left alone while
it is being mutation-tested. Point its import at :mod:`builder.tarsafe` and delete this file.
"""

from builder.tarsafe import TAR_ERRORS, UnsafeMemberError, check_member_name, member_path

__all__ = ["TAR_ERRORS", "UnsafeMemberError", "check_member_name", "member_path"]
