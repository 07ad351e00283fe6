"""Exceptions raised by trackpoint.

Every error trackpoint raises derives from :class:`CheckpointError`. Where a
Python builtin fits, the class also derives from it, so ordinary handlers
work: a missing checkpoint file is a ``FileNotFoundError``, a bad argument a
``ValueError``. Names follow TensorFlow's ``tf.errors``.

Example::

    try:
        trackpoint.load_checkpoint("/no/such/ckpt")
    except FileNotFoundError as e:   # also trackpoint.errors.NotFoundError
        print(e)
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "InvalidArgumentError",
    "NotFoundError",
    "AlreadyExistsError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "FailedPreconditionError",
    "OutOfRangeError",
    "UnimplementedError",
    "InternalError",
    "UnavailableError",
    "DataLossError",
]


class CheckpointError(Exception):
    """Root of every trackpoint error."""


class InvalidArgumentError(CheckpointError, ValueError):
    """An argument was malformed (wrong shape, dtype, key, ...)."""


class NotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint, one of its files, or a key in it does not exist."""


class AlreadyExistsError(CheckpointError, FileExistsError):
    """Something to be created already exists."""


class PermissionDeniedError(CheckpointError, PermissionError):
    """The operating system refused access."""


class ResourceExhaustedError(CheckpointError, OSError):
    """Out of disk space, memory or file descriptors."""


class FailedPreconditionError(CheckpointError):
    """The object is not in a state that allows the call."""


class OutOfRangeError(CheckpointError, IndexError):
    """A value lies outside its valid range."""


class UnimplementedError(CheckpointError, NotImplementedError):
    """The checkpoint uses a feature trackpoint does not support."""


class InternalError(CheckpointError):
    """A bug in trackpoint: please report it."""


class UnavailableError(CheckpointError, OSError):
    """An I/O operation failed (e.g. EIO)."""


class DataLossError(CheckpointError):
    """A checkpoint file is corrupt or truncated (checksum mismatch, bad index)."""


def from_os_error(error: OSError, what: str) -> CheckpointError:
    """The trackpoint error for an OS error met while doing ``what`` (a phrase
    naming the path), classed by errno as the C++ core classes it: ENOSPC,
    EDQUOT, ENOMEM, EMFILE, ENFILE -> ResourceExhaustedError; EACCES, EPERM,
    EROFS -> PermissionDeniedError; ENOENT, ENOTDIR -> NotFoundError; EEXIST
    -> AlreadyExistsError; EINVAL, ENAMETOOLONG, EISDIR -> InvalidArgumentError;
    anything else (EIO, EXDEV, ...) -> UnavailableError. Raise it ``from``
    the original.

    Example::

        try:
            os.replace(tmp, path)
        except OSError as e:
            raise from_os_error(e, f"cannot rename {tmp} to {path}") from e
    """
    if isinstance(error, CheckpointError):
        return error
    code = getattr(error, "errno", None)
    cls = _ERRNO_CLASSES.get(code, UnavailableError)
    reason = error.strerror or str(error)
    return cls(f"{what}: {reason}")


def _errno_classes() -> dict:
    import errno

    table = {}
    for cls, names in (
        (ResourceExhaustedError, ("ENOSPC", "EDQUOT", "ENOMEM", "EMFILE", "ENFILE")),
        (PermissionDeniedError, ("EACCES", "EPERM", "EROFS")),
        (NotFoundError, ("ENOENT", "ENOTDIR")),
        (AlreadyExistsError, ("EEXIST",)),
        (InvalidArgumentError, ("EINVAL", "ENAMETOOLONG", "EISDIR")),
    ):
        for name in names:
            if hasattr(errno, name):
                table[getattr(errno, name)] = cls
    return table


_ERRNO_CLASSES = _errno_classes()
