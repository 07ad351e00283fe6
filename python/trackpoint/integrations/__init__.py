"""Integrations with training frameworks, each a module importing its framework.

- :mod:`trackpoint.integrations.lightning`: ``TrackpointCheckpointIO``, a PyTorch
  Lightning ``CheckpointIO`` plugin (needs ``lightning``).

Nothing is imported here: ``import trackpoint.integrations`` imports no framework.
"""
