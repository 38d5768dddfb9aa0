"""builder: turn a declarative recipe plus a hashed lock into a relocatable app bundle."""

__version__ = "0.1.0"
