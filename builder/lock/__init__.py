"""The lock file: its model (``model``), field rules (``fields``) and codec (``codec``); no
pipeline code, so every stage may read a lock. Making one is ``builder.locking``."""
