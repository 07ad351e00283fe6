"""The manager's retention rules (trackpoint.retention), as values: no disk,
no clock."""

from __future__ import annotations

import doctest

import pytest

from trackpoint import retention
from trackpoint.retention import (
    Entry,
    RetentionPolicy,
    best,
    checkpoint_number,
    protected,
    recover,
    sweep,
)

HOUR = 3600.0


def _entries(*numbers, stamps=None, metrics=None):
    stamps = stamps or [float(n) for n in numbers]
    metrics = metrics or [None] * len(numbers)
    return [Entry(f"/run/ckpt-{n}", s, m, n) for n, s, m in zip(numbers, stamps, metrics)]


def _paths(entries):
    return [e.path.rsplit("/", 1)[1] for e in entries]


def test_docstring_examples():
    failures, _ = doctest.testmod(retention)
    assert failures == 0


def test_max_to_keep_deletes_the_oldest_first():
    result = sweep(_entries(1, 2, 3, 4, 5), RetentionPolicy(max_to_keep=2), 0.0)
    assert _paths(result.kept) == ["ckpt-4", "ckpt-5"]
    assert _paths(result.deleted) == ["ckpt-1", "ckpt-2", "ckpt-3"]
    assert result.preserved == []
    assert result.last_preserved_timestamp == 0.0


def test_within_max_to_keep_nothing_leaves():
    entries = _entries(1, 2)
    result = sweep(entries, RetentionPolicy(max_to_keep=2), 7.0)
    assert result.kept == entries
    assert result.deleted == [] and result.preserved == []
    assert result.last_preserved_timestamp == 7.0


@pytest.mark.parametrize("max_to_keep", [None, 0])
def test_no_max_to_keep_keeps_everything(max_to_keep):
    entries = _entries(1, 2, 3)
    result = sweep(entries, RetentionPolicy(max_to_keep=max_to_keep, keep_every_n_steps=2), 0.0)
    assert result.kept == entries
    assert result.deleted == []


def test_every_n_hours_preserves_and_moves_the_last_preserved_time():
    # max_to_keep=2, every hour: of the four leaving (0.5h..2h), each one
    # at least an hour after the last preserved one (first 0) is preserved.
    stamps = [0.5 * HOUR, 1.0 * HOUR, 1.5 * HOUR, 2.0 * HOUR, 2.5 * HOUR, 3.0 * HOUR]
    policy = RetentionPolicy(max_to_keep=2, keep_checkpoint_every_n_hours=1)
    result = sweep(_entries(1, 2, 3, 4, 5, 6, stamps=stamps), policy, 0.0)
    assert _paths(result.kept) == ["ckpt-5", "ckpt-6"]
    assert _paths(result.preserved) == ["ckpt-2", "ckpt-4"]
    assert _paths(result.deleted) == ["ckpt-1", "ckpt-3"]
    assert result.last_preserved_timestamp == 2.0 * HOUR


def test_every_n_hours_boundary_is_inclusive():
    policy = RetentionPolicy(max_to_keep=1, keep_checkpoint_every_n_hours=2)
    result = sweep(_entries(1, 2, stamps=[100.0 + 2 * HOUR, 200.0 + 2 * HOUR]), policy, 100.0)
    assert _paths(result.preserved) == ["ckpt-1"]
    assert result.last_preserved_timestamp == 100.0 + 2 * HOUR
    result = sweep(_entries(1, 2, stamps=[99.0 + 2 * HOUR, 200.0 + 2 * HOUR]), policy, 100.0)
    assert _paths(result.deleted) == ["ckpt-1"]
    assert result.last_preserved_timestamp == 100.0


def test_every_n_steps_protects_multiples_outside_max_to_keep():
    policy = RetentionPolicy(max_to_keep=2, keep_every_n_steps=3)
    result = sweep(_entries(1, 2, 3, 4, 5, 6, 7), policy, 0.0)
    # 3 and 6 are protected and do not count against max_to_keep.
    assert _paths(result.kept) == ["ckpt-3", "ckpt-5", "ckpt-6", "ckpt-7"]
    assert _paths(result.deleted) == ["ckpt-1", "ckpt-2", "ckpt-4"]


def test_every_n_steps_ignores_paths_without_a_number():
    entries = [Entry("/run/other", 1.0), *_entries(2, 3)]
    result = sweep(entries, RetentionPolicy(max_to_keep=1, keep_every_n_steps=2), 0.0)
    assert [e.path for e in result.deleted] == ["/run/other"]
    assert _paths(result.kept) == ["ckpt-2", "ckpt-3"]


def test_keep_best_max_and_min():
    metrics = [{"acc": 0.9}, {"acc": 0.1}, {"acc": 0.5}, {"acc": 0.2}, {"acc": 0.3}]
    entries = _entries(1, 2, 3, 4, 5, metrics=metrics)
    by_acc = {"best_fn": lambda m: m["acc"], "keep_best": 2}
    assert protected(entries, RetentionPolicy(max_to_keep=1, best_mode="max", **by_acc)) == {
        "/run/ckpt-1", "/run/ckpt-3"}
    assert protected(entries, RetentionPolicy(max_to_keep=1, best_mode="min", **by_acc)) == {
        "/run/ckpt-2", "/run/ckpt-4"}
    result = sweep(entries, RetentionPolicy(max_to_keep=1, best_mode="max", **by_acc), 0.0)
    assert _paths(result.kept) == ["ckpt-1", "ckpt-3", "ckpt-5"]
    assert _paths(result.deleted) == ["ckpt-2", "ckpt-4"]


def test_keep_best_ties_keep_the_older_and_skip_missing_metrics():
    metrics = [{"acc": 1.0}, None, {"acc": 1.0}, {"acc": 1.0}]
    entries = _entries(1, 2, 3, 4, metrics=metrics)
    policy = RetentionPolicy(max_to_keep=1, keep_best=2, best_fn=lambda m: m["acc"])
    assert protected(entries, policy) == {"/run/ckpt-1", "/run/ckpt-3"}
    result = sweep(entries, policy, 0.0)
    assert _paths(result.deleted) == ["ckpt-2"]
    assert _paths(result.kept) == ["ckpt-1", "ckpt-3", "ckpt-4"]


def test_best_picks_the_best_with_metrics():
    metrics = [{"loss": 0.3}, None, {"loss": 0.1}, {"loss": 0.1}]
    entries = _entries(1, 2, 3, 4, metrics=metrics)
    assert best(entries, lambda m: m["loss"], "min").path == "/run/ckpt-3"
    assert best(entries, lambda m: m["loss"], "max").path == "/run/ckpt-1"
    assert best(_entries(1, 2), lambda m: m["loss"]) is None
    assert best([], lambda m: 0.0) is None


def test_checkpoint_number():
    assert checkpoint_number("/run/ckpt-0", "/run/ckpt") == 0
    assert checkpoint_number("/run/ckpt-007", "/run/ckpt") == 7
    assert checkpoint_number("/run/ckpt-3.index", "/run/ckpt") is None
    assert checkpoint_number("/run/ckpt-x", "/run/ckpt") is None
    assert checkpoint_number("/other/ckpt-3", "/run/ckpt") is None
    # The prefix is literal text, not a pattern.
    assert checkpoint_number("/run/ckptX-3", "/run/ckpt.") is None


def test_recover_keeps_what_is_newer_than_the_last_preserved_time():
    r = recover(["a", "b", "c"], [5.0, 10.0, 11.0], last_preserved_timestamp=10.0, now=20.0)
    assert [(e.path, e.timestamp) for e in r.managed] == [("c", 11.0)]
    assert r.last_preserved_timestamp == 10.0
    assert not r.clock_behind


def test_recover_without_timestamps_manages_nothing():
    r = recover(["a", "b"], [], last_preserved_timestamp=3.0, now=20.0)
    assert r.managed == []
    assert r.last_preserved_timestamp == 3.0


def test_recover_future_stamps_count_as_now():
    # Stamped after "now" (a clock that jumped back): compared as now.
    r = recover(["a"], [50.0], last_preserved_timestamp=30.0, now=40.0)
    assert [(e.path, e.timestamp) for e in r.managed] == [("a", 50.0)]
    r = recover(["a"], [50.0], last_preserved_timestamp=40.0, now=40.0)
    assert r.managed == []


def test_recover_with_the_clock_behind_keeps_the_listed_checkpoints():
    # They leave the managed list, so no sweep ever deletes them.
    r = recover(["a", "b"], [90.0, 95.0], last_preserved_timestamp=100.0, now=80.0)
    assert r.clock_behind
    assert r.last_preserved_timestamp == 80.0
    assert r.managed == []
    # Without timestamps, they get the (new) last preserved time: not managed.
    r = recover(["a", "b"], None, last_preserved_timestamp=100.0, now=80.0)
    assert r.managed == [] and r.last_preserved_timestamp == 80.0


def test_sweep_does_not_change_its_input():
    entries = _entries(1, 2, 3)
    copy = list(entries)
    sweep(entries, RetentionPolicy(max_to_keep=1), 0.0)
    assert entries == copy
