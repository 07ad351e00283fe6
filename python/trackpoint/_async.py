"""Background writing for CheckpointOptions(enable_async=True).

A save first takes a snapshot: every value is copied into a staging buffer
kept from one save to the next (so the training loop may change its tensors
as soon as save() returns), then a background thread writes the bundle and
runs what must follow a durable write (the state file, a manager's
bookkeeping). One save is in flight at a time: the next save, sync(),
restore() and read() wait for it first, and re-raise its error if it failed.
"""

from __future__ import annotations

import atexit
import threading
import weakref

import numpy as np

from ._device import DeviceBuffer, stage

_writers: "weakref.WeakSet[AsyncWriter]" = weakref.WeakSet()


@atexit.register
def _drain_at_exit() -> None:
    for writer in list(_writers):
        try:
            writer.wait()
        except Exception:  # noqa: BLE001 -- nothing left to report it to
            pass


class StagingPool:
    """Host buffers reused across snapshots, one per checkpoint key."""

    def __init__(self):
        self._buffers: dict = {}

    def copy(self, key: str, value):
        """A snapshot of value: a pooled array holding a copy of it (strings: a
        new list). A DeviceBuffer is staged into a pooled host buffer now, so
        the background write needs no device access."""
        if isinstance(value, DeviceBuffer):
            staged = stage(value, self._buffers.get(key))
            self._buffers[key] = staged.data
            return staged
        array = np.asarray(value)
        if array.dtype == object:
            return array.copy()
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
            buffer = self._buffers[key] = np.empty(array.shape, dtype=array.dtype)
        np.copyto(buffer, array)
        return buffer


class AsyncWriter:
    """Runs one job at a time on a background thread; errors surface on the next call."""

    def __init__(self):
        self.pool = StagingPool()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._on_failed = None
        _writers.add(self)

    def wait(self) -> None:
        """Waits for the job in flight; if it failed, runs its on_failed() and
        raises its error, once."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        on_failed, self._on_failed = self._on_failed, None
        if error is not None:
            if on_failed is not None:
                on_failed()
            raise error

    def submit(self, job, on_failed=None) -> None:
        """Waits for the previous job (raising its error), then starts job().
        If job() raises, on_failed() runs on the thread that gets the error."""
        self.wait()

        def run():
            try:
                job()
            except BaseException as e:  # noqa: BLE001 -- re-raised on the caller's thread
                self._error = e

        self._on_failed = on_failed
        self._thread = threading.Thread(target=run, name="trackpoint-async-save", daemon=True)
        self._thread.start()
