"""CheckpointManager: keeps a directory of numbered checkpoints, as
``tf.train.CheckpointManager`` does, and a few things TensorFlow's does not
(keep the best N by a metric, keep every Nth step).

Example::

    ckpt = trackpoint.Checkpoint(model=model, optimizer=opt)
    manager = trackpoint.CheckpointManager(ckpt, "/tmp/run", max_to_keep=3)
    manager.restore_or_initialize()          # resumes from the latest checkpoint, if any
    for step in range(1000):
        train_step()
        if step % 100 == 0:
            manager.save()                   # /tmp/run/ckpt-1, ckpt-2, ...; old ones deleted

Crash safety, the commit protocol of ``save()``:

1. The new checkpoint's files are written and made durable (see
   :class:`~trackpoint.bundle.BundleWriter`; a directory the save creates is
   fsynced with its parent), then its metrics file, if any.
2. Commit point: the ``checkpoint`` state file is replaced (a fsynced
   temporary file renamed over it). It names the new checkpoint as the
   latest and still lists the old ones about to be deleted.
3. After the commit, best effort only: the directory fsync (tried twice),
   the deletion of old checkpoints, and a second state file that no longer
   lists the deleted ones (its directory entry is not fsynced: lost in a
   crash, it leaves the first, which is valid).

A save raises only while the previous checkpoint is still the latest: a
failure before the commit point raises a trackpoint error naming the file
(ResourceExhaustedError for a full disk, PermissionDeniedError,
UnavailableError for EIO, ...), removes the new files and gives the number
back to ``save_counter``. What fails after it is logged with the path and
appended to :attr:`CheckpointManager.cleanup_errors`, never raised, and
never takes the number back; a checkpoint that could not be deleted stays
listed in the state file and is deleted by a later save. So a crash at any
moment leaves the old or the new checkpoint as the latest, and every
checkpoint due for deletion listed: a new manager adopts it and deletes it
when its own sweep says so. A new manager also removes what an interrupted
save left (temporary files, data files without an index). It deletes only
its own numbered checkpoints (``<checkpoint_name>-<N>``) that a state file
listed, and only inside its directory; checkpoints kept by
``keep_checkpoint_every_n_hours`` leave the list and are never deleted, as
in TensorFlow.

One writer per directory: a manager locks its directory (an advisory
``flock`` on the directory, no file added) from its first ``save()`` until
:meth:`~CheckpointManager.close`, the end of a ``with`` block or garbage
collection, and cleans up interrupted saves at construction only while no
other process holds it. Managers of one process share the lock (TensorFlow's
own usage makes a second manager while the first exists); ``save()`` of a
manager in another process raises
:class:`~trackpoint.errors.FailedPreconditionError` naming the directory and
the pid holding it. In a multi-process save (``experimental_coordinator``)
rank 0 is the writer and takes the lock. Readers (``latest_checkpoint``,
``load_checkpoint``) take no lock and never see a partial checkpoint.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import shutil
import time

from . import _dirlock, retention
from ._paths import local_path
from ._saver import give_back_number
from .errors import CheckpointError, FailedPreconditionError, from_os_error
from .state_file import (
    get_checkpoint_state,
    make_directories,
    read_checkpoint_state,
    read_regular_file,
    update_state_file,
    write_atomically,
)

__all__ = ["CheckpointManager"]

_log = logging.getLogger("trackpoint")

# Seconds a first save waits for another process's brief hold of the directory lock.
_LOCK_PATIENCE = 5.0

# The clock the manager stamps checkpoints with (tests replace it).
_now = time.time

METRICS_SUFFIX = ".metrics.json"
_MAX_METRICS_BYTES = 1 << 20


class CheckpointManager:
    """Saves numbered checkpoints of one Checkpoint in one directory and
    deletes old ones.

    Args, as in TensorFlow:
        checkpoint: the :class:`~trackpoint.Checkpoint` to save and restore.
        directory: where checkpoints and the ``checkpoint`` state file live.
        max_to_keep: keep this many most recent checkpoints (None: keep all).
        keep_checkpoint_every_n_hours: additionally keep one checkpoint per
            this many hours; kept checkpoints leave the managed list.
        checkpoint_name: checkpoint file prefix (``<directory>/<name>-<N>``).
        step_counter, checkpoint_interval: with both, ``save()`` does nothing
            unless ``checkpoint_interval`` steps passed since the last save.
        init_fn: called by ``restore_or_initialize()`` when there is nothing
            to restore.
        last_checkpoint_step: the step of the last save, when known.

    Beyond TensorFlow (all off by default, then behaviour is TensorFlow's):
        best_fn: ``metrics dict -> number``; with ``keep_best``, the
            ``keep_best`` checkpoints with the best value (``best_mode``
            "max" or "min") are never deleted while they stay among the best.
            The metrics passed to ``save(metrics=...)`` are written next to the
            checkpoint (``<prefix>-<N>.metrics.json``) before the state file
            names it, so a new manager recovers them.
        keep_every_n_steps: never delete checkpoints whose number is a
            multiple of this.

    A manager deletes only the files of checkpoints it manages, and only
    inside ``directory``.

    Attributes:
        cleanup_errors: what went wrong after the commit point of a save
            (a directory fsync, the deletion of an old checkpoint), one
            message naming the path per failure, oldest first. Such a
            failure does not fail the save (see the module docstring).
    """

    def __init__(
        self,
        checkpoint,
        directory,
        max_to_keep,
        keep_checkpoint_every_n_hours=None,
        checkpoint_name="ckpt",
        step_counter=None,
        checkpoint_interval=None,
        init_fn=None,
        last_checkpoint_step=None,
        *,
        best_fn=None,
        best_mode="max",
        keep_best=None,
        keep_every_n_steps=None,
    ):
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep <= 0):
            raise ValueError(f"Expected a positive integer or None for `max_to_keep`, got {max_to_keep}.")
        if checkpoint_interval is not None and step_counter is None:
            raise ValueError("`step_counter` should be passed if `checkpoint_interval` is not None.")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        if keep_best is not None and best_fn is None:
            raise ValueError("keep_best needs best_fn")
        self._checkpoint = checkpoint
        self._directory = local_path(directory)
        self._max_to_keep = max_to_keep
        self._keep_checkpoint_every_n_hours = keep_checkpoint_every_n_hours
        self._checkpoint_name = checkpoint_name
        self._prefix = os.path.join(self._directory, checkpoint_name)
        self._step_counter = step_counter
        self._checkpoint_interval = checkpoint_interval
        self._init_fn = init_fn
        self._last_checkpoint_step = last_checkpoint_step
        self._best_fn = best_fn
        self._best_mode = best_mode
        self._keep_best = keep_best
        self._keep_every_n_steps = keep_every_n_steps
        self._metrics: dict = {}  # path -> metrics dict
        self._undeleted: dict = {}  # path -> timestamp: deletions that failed, retried
        self.cleanup_errors: list = []
        self._lock = None  # the directory lock, taken by the first save
        self._locked = False
        self._closed = False
        try:
            # Leftovers are only leftovers if no other process is saving.
            with _dirlock.held(self._directory):
                self._remove_interrupted_saves()
        except FailedPreconditionError as e:
            _log.info("not removing leftovers of interrupted saves: %s", e)
        self._recover_state()

    # ---- recovery ----------------------------------------------------------------------
    def _recover_state(self) -> None:
        state = read_checkpoint_state(self._directory)
        now = _now()
        self._maybe_delete: dict = {}  # path -> timestamp, oldest first
        if state is None:
            self._latest_checkpoint = None
            self._last_preserved_timestamp = now - 1
            return
        self._latest_checkpoint = state.model_checkpoint_path
        found = retention.recover(state.all_model_checkpoint_paths,
                                  state.all_model_checkpoint_timestamps,
                                  state.last_preserved_timestamp, now)
        if found.clock_behind:
            _log.warning(
                "%s: the clock (%f) is %f seconds behind the last preserved checkpoint "
                "timestamp; keeping the checkpoints the state file lists, and preserving "
                "from now on", self._directory, now, state.last_preserved_timestamp - now)
        self._last_preserved_timestamp = found.last_preserved_timestamp
        for entry in found.managed:
            self._maybe_delete[entry.path] = entry.timestamp
            self._metrics[entry.path] = self._read_metrics(entry.path)

    def _read_metrics(self, path: str):
        try:
            data = read_regular_file(path + METRICS_SUFFIX, _MAX_METRICS_BYTES, "metrics file")
            return json.loads(data.decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, CheckpointError) as e:
            _log.warning("ignoring unreadable metrics of %s: %s", path, e)
            return None

    def _remove_interrupted_saves(self) -> None:
        """Deletes what a killed save or deletion of this manager's
        checkpoints left behind: temporary files, data files whose index
        never appeared, and unlisted indexes or metrics files whose
        checkpoint lost its data files."""
        pattern = re.compile(
            re.escape(self._checkpoint_name)
            + r"-\d+(\.index|\.data-\d{5,}-of-\d{5,}|" + re.escape(METRICS_SUFFIX) + r")"
            + r"(\.tempstate\d+|\.tmp[0-9a-f]{32})?")
        state_temp = re.compile(r"checkpoint\.tmp[0-9a-f]{32}")
        try:
            names = os.listdir(self._directory)
        except (FileNotFoundError, NotADirectoryError):
            return  # the first save creates it, or says why it cannot
        except OSError as e:
            raise from_os_error(e, f"cannot list checkpoint directory {self._directory}") from e
        present = set(names)
        listed = self._listed_names()
        for name in names:
            m = pattern.fullmatch(name)
            temporary = bool(m and m.group(2)) or bool(state_temp.fullmatch(name))
            orphan = bool(m and not m.group(2) and m.group(1).startswith(".data-") and
                          name[: name.index(".data-")] + ".index" not in present)
            # An index or metrics file of a checkpoint without any data
            # file: the remains of a deletion a crash interrupted
            # (unlinks need not become durable in order). Only for
            # checkpoints the state file does not list.
            if m and not m.group(2) and m.group(1) in (".index", METRICS_SUFFIX):
                stem = name[: -len(m.group(1))]
                orphan = (listed is not None and stem not in listed
                          and not any(n.startswith(stem + ".data-") for n in present))
            if temporary or orphan:
                try:
                    os.unlink(os.path.join(self._directory, name))
                    _log.info("removed %s left by an interrupted save", name)
                except FileNotFoundError:
                    pass
                except OSError as e:  # a read-only directory can still be restored from
                    _log.warning("cannot remove %s left by an interrupted save: %s",
                                 os.path.join(self._directory, name), e)

    def _listed_names(self) -> set | None:
        """Base names of the checkpoints the state file lists; None when it
        cannot be read (then nothing listed may be taken for unlisted)."""
        try:
            state = read_checkpoint_state(self._directory)
        except (OSError, CheckpointError):
            return None
        if state is None:
            return set()
        paths = list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]
        return {os.path.basename(p) for p in paths if p}

    # ---- properties ------------------------------------------------------------------
    @property
    def directory(self) -> str:
        return self._directory

    @property
    def checkpoint(self):
        return self._checkpoint

    @property
    def checkpoint_interval(self):
        return self._checkpoint_interval

    @property
    def latest_checkpoint(self) -> str | None:
        """The prefix of the newest checkpoint this manager knows of (no file check)."""
        return self._latest_checkpoint

    @property
    def checkpoints(self) -> list:
        """The managed checkpoints, oldest first."""
        return list(self._maybe_delete)

    # ---- the directory lock --------------------------------------------------------------
    def _lock_directory(self) -> None:
        """Makes this process the directory's writer, or raises
        FailedPreconditionError naming the process that is."""
        if not self._locked:
            make_directories(self._directory)
            # Another process's manager may hold the lock for a moment while it
            # is constructed (its clean-up); a writer that keeps it is an error.
            self._lock = _dirlock.acquire(self._directory, patience=_LOCK_PATIENCE)
            self._locked = True

    def close(self) -> None:
        """Waits for pending saves, then releases the directory lock (another
        process may then save into the directory); this manager can no
        longer save. Idempotent."""
        if not getattr(self, "_closed", True):
            self.sync()
        self._release()

    def _release(self) -> None:
        self._closed = True
        lock, self._lock = getattr(self, "_lock", None), None
        _dirlock.release(lock)

    def __enter__(self) -> CheckpointManager:  # noqa: PYI034 -- Python 3.9
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # e.g. at interpreter shutdown
            self._release()

    # ---- saving ----------------------------------------------------------------------
    def save(self, checkpoint_number=None, check_interval=True, options=None, metrics=None):
        """Saves a checkpoint numbered ``checkpoint_number`` (default: the
        checkpoint's incremented ``save_counter``), records it in the state file
        and deletes the checkpoints no longer kept. Returns its path, or None
        when ``checkpoint_interval`` says it is not time yet. A failed save
        leaves ``save_counter``, the state file and the interval's last saved
        step as they were (with ``enable_async``, the counter once its error
        is raised)."""
        if self._closed:
            raise FailedPreconditionError(f"this CheckpointManager of {self._directory} was closed")
        step = None  # the step to remember as saved, once the save is under way
        if self._checkpoint_interval is not None:
            step = int(self._step_counter)
            if self._last_checkpoint_step is not None:
                if step == self._last_checkpoint_step:
                    return None
                if check_interval and step < self._last_checkpoint_step + self._checkpoint_interval:
                    return None
        coordinator = getattr(options, "experimental_coordinator", None)
        if coordinator is None or coordinator.rank == 0:
            self._lock_directory()
        self._checkpoint.sync()  # a pending save's failure gives its number back first
        counter = self._checkpoint.save_counter
        count = int(counter) + 1
        counter.assign(count)
        number = count if checkpoint_number is None else int(checkpoint_number)
        path = f"{self._prefix}-{number}"
        committed = []  # once the state file names path, the number stays taken

        def on_durable():  # after the files are durable; in the background when async
            self._commit(path, metrics)
            committed.append(path)

        def give_back():
            if not committed:
                give_back_number(counter, count)

        try:
            if coordinator is not None:
                self._save_coordinated(path, options, metrics)
            else:
                self._checkpoint._write(path, options, on_done=on_durable, on_failed=give_back)
        except BaseException:
            give_back()
            raise
        if step is not None:  # a failed save does not push the next one back
            self._last_checkpoint_step = step
        return path

    def _save_coordinated(self, path: str, options, metrics) -> None:
        """Multi-process save (options.experimental_coordinator): every process
        writes its part, then rank 0 alone writes the metrics and state files
        and deletes old checkpoints (and temporary directories of interrupted
        saves) while the other processes update their bookkeeping the same
        way, with rank 0's timestamp. Nobody returns before rank 0 is done."""
        from .distributed.saving import AbortedError, checkpoint_write_hook, describe_error

        coordinator = options.experimental_coordinator
        checkpoint_write_hook(self._checkpoint, path, options)
        outcome = error = None
        if coordinator.rank == 0:
            try:
                if metrics is not None:
                    write_atomically(
                        path + METRICS_SUFFIX, json.dumps(metrics, sort_keys=True).encode("utf-8"))
                self._record(path, metrics)
                self._remove_interrupted_temp_dirs()
                outcome = {"stamp": self._maybe_delete.get(path)}
            except Exception as e:  # noqa: BLE001
                outcome, error = {"error": describe_error(e)}, e
        outcome = coordinator.broadcast(outcome, src=0)
        if "error" in outcome:
            if coordinator.rank == 0:
                raise error
            raise AbortedError(
                f"rank 0 could not record {path} in the state file: {outcome['error']}")
        if coordinator.rank != 0:
            # _record without its I/O, with rank 0's timestamp.
            self._maybe_delete.pop(path, None)
            self._maybe_delete[path] = outcome["stamp"]
            self._metrics[path] = metrics
            self._latest_checkpoint = path
            self._sweep()

    def _remove_interrupted_temp_dirs(self) -> None:
        """Removes <name>-<N>_temp directories left by interrupted sharded saves."""
        pattern = re.compile(re.escape(self._checkpoint_name) + r"-\d+_temp")
        try:
            names = os.listdir(self._directory)
        except OSError:
            return
        for entry in names:
            if pattern.fullmatch(entry):
                shutil.rmtree(os.path.join(self._directory, entry), ignore_errors=True)

    def _commit(self, path: str, metrics) -> None:
        """Writes path's metrics file, then records path (see _record). A
        failure before the state file names path removes path's files."""
        if metrics is not None:
            try:
                problem = write_atomically(
                    path + METRICS_SUFFIX, json.dumps(metrics, sort_keys=True).encode("utf-8"))
            except BaseException:
                if path not in self._maybe_delete:
                    self._delete_files(path)
                raise
            self._note(problem)
        self._record(path, metrics)

    def _record(self, path: str, metrics) -> None:
        """Makes path the latest checkpoint: sweeps the managed list, replaces
        the state file (the commit point), then deletes what the sweep dropped
        and writes the state file again without it. Raises only when the state
        file still names the previous checkpoint; then the bookkeeping is as
        it was and path's files are removed."""
        before = (dict(self._maybe_delete), dict(self._metrics), self._latest_checkpoint,
                  self._last_preserved_timestamp, dict(self._undeleted))
        self._maybe_delete.pop(path, None)
        self._maybe_delete[path] = _now()
        self._metrics[path] = metrics
        self._latest_checkpoint = path
        doomed = dict(self._undeleted)
        doomed.update(self._sweep())
        doomed.pop(path, None)
        try:
            # Until their files are gone, the state file keeps listing them.
            self._note(self._write_state(doomed))
        except BaseException:
            if self._state_names(path):
                _log.warning("the state file of %s names %s although writing it failed; "
                             "keeping it", self._directory, path)
            else:
                (self._maybe_delete, self._metrics, self._latest_checkpoint,
                 self._last_preserved_timestamp, self._undeleted) = before
                if path not in before[0]:
                    self._delete_files(path)
                raise
        # Past the commit point: nothing below raises.
        self._undeleted = {old: stamp for old, stamp in doomed.items()
                           if not self._delete_files(old)}
        if doomed:
            try:
                # Lost in a crash, this leaves the first one: not fsynced.
                self._note(self._write_state(self._undeleted, sync_dir=False))
            except (CheckpointError, OSError, ValueError) as e:
                self._note(f"cannot rewrite the state file of {self._directory}: {e}")

    def _write_state(self, also_listed: dict, sync_dir: bool = True):
        """Replaces the state file: the managed checkpoints, after those in
        also_listed (path -> timestamp). Returns a post-commit problem or None."""
        listed = dict(also_listed)
        listed.update(self._maybe_delete)
        return update_state_file(
            self._directory, self._latest_checkpoint,
            all_model_checkpoint_paths=list(listed),
            all_model_checkpoint_timestamps=list(listed.values()),
            last_preserved_timestamp=self._last_preserved_timestamp,
            save_relative_paths=True,
            sync_dir=sync_dir,
        )

    def _state_names(self, path: str) -> bool:
        """Whether the state file on disk names path as the latest."""
        try:
            state = get_checkpoint_state(self._directory)
        except Exception:  # noqa: BLE001 -- unreadable: it does not name path
            return False
        return state is not None and os.path.abspath(state.model_checkpoint_path) == \
            os.path.abspath(path)

    def _note(self, problem) -> None:
        """Counts a failure after the commit point (already logged)."""
        if problem:
            self.cleanup_errors.append(str(problem))

    def _policy(self) -> retention.RetentionPolicy:
        return retention.RetentionPolicy(
            max_to_keep=self._max_to_keep,
            keep_checkpoint_every_n_hours=self._keep_checkpoint_every_n_hours,
            keep_every_n_steps=self._keep_every_n_steps,
            keep_best=self._keep_best,
            best_fn=self._best_fn,
            best_mode=self._best_mode,
        )

    def _entries(self) -> list:
        """The managed checkpoints as retention entries, oldest first."""
        return [retention.Entry(path, stamp, self._metrics.get(path),
                                retention.checkpoint_number(path, self._prefix))
                for path, stamp in self._maybe_delete.items()]

    def _sweep(self) -> dict:
        """Applies the retention policy (see :mod:`trackpoint.retention`) to
        the managed list; returns the checkpoints whose files must go
        (path -> timestamp)."""
        result = retention.sweep(self._entries(), self._policy(), self._last_preserved_timestamp)
        for entry in result.preserved + result.deleted:
            del self._maybe_delete[entry.path]
            self._metrics.pop(entry.path, None)
        self._last_preserved_timestamp = result.last_preserved_timestamp
        return {entry.path: entry.timestamp for entry in result.deleted}

    def _delete_files(self, path: str) -> bool:
        """Deletes a checkpoint's files (the index first, so it stops being a
        checkpoint at once). Best effort: a failure is logged with the file,
        counted in cleanup_errors, and False returned."""
        try:
            directory = os.path.realpath(self._directory)
            if os.path.dirname(os.path.realpath(path)) != directory:
                _log.warning("not deleting %s: it is outside %s", path, self._directory)
                return True
            files = [path + ".index", path + METRICS_SUFFIX]
            files += glob.glob(glob.escape(path) + ".data-?????-of-?????")
        except ValueError as e:  # a NUL byte from a hostile state file: never a file
            self._deletion_failed(f"cannot delete checkpoint {path!r}: {e}")
            return True  # nothing to retry: it leaves the list
        except OSError as e:
            return self._deletion_failed(f"cannot delete checkpoint {path}: {e}")
        ok = True
        for name in files:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as e:
                ok = self._deletion_failed(f"cannot delete {name}: {e}")
        return ok

    def _deletion_failed(self, message: str) -> bool:
        _log.error("%s", message)
        self.cleanup_errors.append(message)
        return False

    # ---- restoring -------------------------------------------------------------------
    def restore_or_initialize(self):
        """Restores the latest checkpoint and returns its path; with none,
        calls ``init_fn`` (if given) and returns None."""
        if self._latest_checkpoint is not None:
            self._checkpoint.restore(self._latest_checkpoint)
            if self._checkpoint_interval is not None:
                self._last_checkpoint_step = int(self._step_counter)
            return self._latest_checkpoint
        if self._init_fn is not None:
            self._init_fn()
        return None

    def sync(self) -> None:
        """Waits until a pending asynchronous save is written and recorded;
        raises its error if it failed."""
        self._checkpoint.sync()

    wait_until_finished = sync

    def best_checkpoint(self) -> str | None:
        """The managed checkpoint with the best metric (needs best_fn), or None."""
        if self._best_fn is None:
            return None
        found = retention.best(self._entries(), self._best_fn, self._best_mode)
        return None if found is None else found.path
