"""``python -m builder``: the same as the ``builder`` command."""

from builder.cli.main import entry

entry()
