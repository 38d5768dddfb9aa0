"""``builder agent check``: does a bundle fit a target image? Read from the image's own files.

One job per module, each importing only those listed before it:

- :mod:`~builder.agent.compat.model`: the facts: what a bundle needs (from its manifest), what an
  image has (read from its files, or given as numbers), the verdict with its reasons.
- :mod:`~builder.agent.compat.probe`: reading an image's root filesystem.
- :mod:`~builder.agent.compat.verdict`: the verdict, pure (:func:`check_compat`), in numbers.
- :mod:`~builder.agent.compat.render`: the verdict for people and for scripts (JSON).
- :mod:`~builder.agent.compat.lookup`: a bundle's needs, from its archive, sidecar, entry or
  store name.
"""
