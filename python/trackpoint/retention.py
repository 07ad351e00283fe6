"""Which checkpoints a :class:`~trackpoint.CheckpointManager` keeps: the
retention rules as pure functions, apart from the manager's file I/O.

The manager describes its checkpoints as :class:`Entry` values (path,
timestamp, metrics, number), asks :func:`sweep` what to do under a
:class:`RetentionPolicy`, and deletes only the files of what the answer lists
in ``deleted``. Nothing here touches a disk or a clock, so each rule is
tested with plain values.

The rules, TensorFlow's first:

* ``max_to_keep``: the newest ``max_to_keep`` checkpoints stay managed; the
  older ones leave the managed list, oldest first. None keeps them all.
* ``keep_checkpoint_every_n_hours``: a checkpoint leaving the list at least
  that many hours after the last preserved timestamp is preserved (never
  deleted) and becomes the new last preserved timestamp.

and two beyond TensorFlow, both protecting checkpoints from ``max_to_keep``
while they are managed (protected ones do not count against it):

* ``keep_every_n_steps``: checkpoints whose number is a multiple of it;
* ``keep_best`` with ``best_fn`` and ``best_mode``: the ``keep_best``
  checkpoints with the best ``best_fn(metrics)``.

Example::

    >>> policy = RetentionPolicy(max_to_keep=2)
    >>> entries = [Entry("ckpt-1", 10.0), Entry("ckpt-2", 20.0), Entry("ckpt-3", 30.0)]
    >>> result = sweep(entries, policy, last_preserved_timestamp=0.0)
    >>> [e.path for e in result.kept], [e.path for e in result.deleted]
    (['ckpt-2', 'ckpt-3'], ['ckpt-1'])
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Callable

__all__ = [
    "Entry",
    "Recovered",
    "RetentionPolicy",
    "Sweep",
    "best",
    "checkpoint_number",
    "protected",
    "recover",
    "sweep",
]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One managed checkpoint.

    Example::

        >>> Entry("/run/ckpt-3", 1700000000.0, {"loss": 0.5}, 3).number
        3
    """

    path: str
    timestamp: float
    metrics: Mapping | None = None
    number: int | None = None


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    """The manager's retention settings (see the module docstring).

    Example::

        >>> RetentionPolicy(max_to_keep=5, keep_checkpoint_every_n_hours=2).max_to_keep
        5
    """

    max_to_keep: int | None
    keep_checkpoint_every_n_hours: float | None = None
    keep_every_n_steps: int | None = None
    keep_best: int | None = None
    best_fn: Callable[[Mapping], float] | None = None
    best_mode: str = "max"


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What :func:`sweep` decided. ``kept``: still managed, oldest first;
    ``preserved``: leave the managed list but are never deleted;
    ``deleted``: leave the list, their files are to be deleted;
    ``last_preserved_timestamp``: the value to carry on with."""

    kept: list
    preserved: list
    deleted: list
    last_preserved_timestamp: float


@dataclasses.dataclass(frozen=True)
class Recovered:
    """What :func:`recover` makes of a state file. ``managed``: the entries
    still managed, in the file's order; ``last_preserved_timestamp``: the value
    to carry on with; ``clock_behind``: the clock is earlier than the file's
    last preserved timestamp (which is then replaced by the clock)."""

    managed: list
    last_preserved_timestamp: float
    clock_behind: bool


def checkpoint_number(path: str, prefix: str) -> int | None:
    """The N of ``<prefix>-<N>``, or None when path is not one.

    Example::

        >>> checkpoint_number("/run/ckpt-12", "/run/ckpt"), checkpoint_number("/run/x", "/run/ckpt")
        (12, None)
    """
    m = re.fullmatch(re.escape(prefix) + r"-(\d+)", path)
    return int(m.group(1)) if m else None


def best(entries: Sequence[Entry], best_fn: Callable[[Mapping], float], mode: str = "max"):
    """The entry with the best ``best_fn(metrics)`` among those with metrics
    (the first of equals), or None.

    Example::

        >>> entries = [Entry("a", 1.0, {"acc": 0.7}), Entry("b", 2.0, {"acc": 0.9}), Entry("c", 3.0)]
        >>> best(entries, lambda m: m["acc"]).path
        'b'
    """
    scored = [(best_fn(e.metrics), e) for e in entries if e.metrics is not None]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda s: s[0])[1]


def protected(entries: Sequence[Entry], policy: RetentionPolicy) -> set:
    """Paths that ``max_to_keep`` does not remove: numbers that are multiples
    of ``keep_every_n_steps`` and the ``keep_best`` best by metric (ties: the
    older first).

    Example::

        >>> entries = [Entry(f"ckpt-{n}", float(n), None, n) for n in range(1, 6)]
        >>> sorted(protected(entries, RetentionPolicy(max_to_keep=1, keep_every_n_steps=2)))
        ['ckpt-2', 'ckpt-4']
    """
    keep = set()
    if policy.keep_every_n_steps:
        keep.update(e.path for e in entries
                    if e.number is not None and e.number % policy.keep_every_n_steps == 0)
    if policy.keep_best:
        scored = [(policy.best_fn(e.metrics), e.path) for e in entries if e.metrics is not None]
        scored.sort(key=lambda s: s[0], reverse=policy.best_mode == "max")
        keep.update(path for _, path in scored[: policy.keep_best])
    return keep


def sweep(entries: Sequence[Entry], policy: RetentionPolicy,
          last_preserved_timestamp: float) -> Sweep:
    """Applies the policy to the managed entries (oldest first), as
    TensorFlow's manager does after each save.

    Example::

        >>> policy = RetentionPolicy(max_to_keep=1, keep_checkpoint_every_n_hours=1)
        >>> hour = 3600.0
        >>> entries = [Entry("a", 0.5 * hour), Entry("b", 1.5 * hour), Entry("c", 2.0 * hour)]
        >>> result = sweep(entries, policy, last_preserved_timestamp=0.0)
        >>> [e.path for e in result.preserved], [e.path for e in result.deleted]
        (['b'], ['a'])
        >>> result.last_preserved_timestamp == 1.5 * hour
        True
    """
    entries = list(entries)
    if not policy.max_to_keep:
        return Sweep(entries, [], [], last_preserved_timestamp)
    keep = protected(entries, policy)
    excess = max(len(entries) - len(keep) - policy.max_to_keep, 0)
    leaving = [e for e in entries if e.path not in keep][:excess]
    gone = {e.path for e in leaving}
    preserved, deleted = [], []
    hours = policy.keep_checkpoint_every_n_hours
    for entry in leaving:
        if hours and entry.timestamp - hours * 3600.0 >= last_preserved_timestamp:
            last_preserved_timestamp = entry.timestamp
            preserved.append(entry)
        else:
            deleted.append(entry)
    kept = [e for e in entries if e.path not in gone]
    return Sweep(kept, preserved, deleted, last_preserved_timestamp)


def recover(paths: Sequence[str], timestamps: Sequence[float] | None,
            last_preserved_timestamp: float, now: float) -> Recovered:
    """Which checkpoints a state file hands to a new manager: those stamped
    after the last preserved timestamp (a stamp in the future counts as now).
    Without timestamps, every path gets the last preserved timestamp, so none
    is managed, as in TensorFlow. A clock behind the last preserved timestamp
    preserves from now on: the listed checkpoints leave the managed list and
    are never deleted.

    Example::

        >>> r = recover(["ckpt-1", "ckpt-2"], [5.0, 15.0], last_preserved_timestamp=10.0, now=20.0)
        >>> [e.path for e in r.managed], r.last_preserved_timestamp, r.clock_behind
        (['ckpt-2'], 10.0, False)
    """
    clock_behind = now < last_preserved_timestamp
    if clock_behind:
        last_preserved_timestamp = now
    stamps = list(timestamps) if timestamps else [last_preserved_timestamp] * len(paths)
    managed = [Entry(path, stamp) for path, stamp in zip(paths, stamps)
               if min(stamp, now) > last_preserved_timestamp]
    return Recovered(managed, last_preserved_timestamp, clock_behind)
