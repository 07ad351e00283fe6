"""The single-writer rule of a checkpoint directory: an advisory lock that a
:class:`~trackpoint.CheckpointManager` holds from its first save until
``close()`` (or garbage collection), and takes briefly at construction to
clean up interrupted saves.

The lock is ``flock(LOCK_EX)`` on the directory itself, so it puts no file in
the directory (a manager's directory listing stays exactly TensorFlow's) and
the kernel drops it when the holding process dies, however it dies. It is
exclusive across processes and shared within one: every manager of one
process on one directory shares a single lock (TensorFlow's own tests create
a second manager on a directory while the first still exists), released
when the last of them closes. A child made by ``fork()`` does not inherit the
lock. On file systems without ``flock`` (some network ones) a warning is
logged and the directory is used unlocked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import time

from .errors import FailedPreconditionError

_log = logging.getLogger("trackpoint")

_mutex = threading.Lock()
_held: dict = {}  # real path -> [fd, number of holders in this process]


def _holder_pid(path: str) -> int | None:
    """The pid holding a flock on path, from /proc/locks (Linux), if found."""
    try:
        st = os.stat(path)
        inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->".
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
                    return int(fields[4])
    except (OSError, ValueError):
        pass
    return None


def acquire(directory: str, patience: float = 0.0) -> str | None:
    """Locks directory for this process (re-entrant within it) and returns the
    key to release it with; None when the file system cannot lock. Raises
    FailedPreconditionError naming the directory and the holder's pid when
    another process still holds it after ``patience`` seconds (a manager
    being constructed holds it for a moment, see held())."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return _try_acquire(directory)
        except FailedPreconditionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.01)


def _try_acquire(directory: str) -> str | None:
    key = os.path.realpath(directory)
    with _mutex:
        held = _held.get(key)
        if held is not None:
            held[1] += 1
            return key
        try:
            fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            _log.warning(
                "cannot open checkpoint directory %s to lock it (%s); using it unlocked",
                directory,
                e,
            )
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                pid = _holder_pid(key)
                holder = f"process {pid}" if pid is not None else "another process"
                raise FailedPreconditionError(
                    f"checkpoint directory {directory} is locked by a CheckpointManager in "
                    f"{holder}: only one process may manage a directory at a time. Close "
                    f"that manager (manager.close()) or end that process, or use another "
                    f"directory."
                ) from None
            _log.warning(
                "cannot lock checkpoint directory %s (%s); using it unlocked: "
                "make sure only one process saves into it",
                directory,
                e,
            )
            return None
        _held[key] = [fd, 1]
        return key


def release(key: str | None) -> None:
    """Drops one hold taken by acquire(); the lock goes with the last one."""
    if key is None:
        return
    with _mutex:
        held = _held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _held[key]
            os.close(held[0])


@contextlib.contextmanager
def held(directory: str):
    """Holds the lock for the duration of a with block (re-entrant like
    acquire); a directory that does not exist yet is not locked."""
    if not os.path.isdir(directory):
        yield
        return
    key = acquire(directory)
    try:
        yield
    finally:
        release(key)


def _forget_after_fork() -> None:
    """In a forked child: close the inherited descriptors (the parent keeps
    its lock) and start with no locks."""
    global _mutex
    _mutex = threading.Lock()
    for fd, _ in _held.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
