"""``builder lock``: the locking stage (pin the interpreter, resolve with pip for each target,
pin sdists' build dependencies and a Node app's inputs) writing a ``builder.lock.Lock``."""
