"""Finding checkpoints: the ``checkpoint`` state file of a directory.

TensorFlow keeps, in each checkpoint directory, a text file named
``checkpoint`` (a ``CheckpointState`` message in protobuf text format) that
names the latest checkpoint and the ones a manager keeps. These functions
read it the way TensorFlow does.

Example::

    path = trackpoint.latest_checkpoint("/tmp/run")   # "/tmp/run/ckpt-12" or None
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat
import time
import uuid

from ._paths import local_path
from .errors import (
    AlreadyExistsError,
    CheckpointError,
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
    from_os_error,
)

__all__ = [
    "CheckpointState", "checkpoints_iterator", "get_checkpoint_state", "latest_checkpoint",
    "update_checkpoint_state",
]

_log = logging.getLogger("trackpoint")

STATE_FILENAME = "checkpoint"


@dataclasses.dataclass
class CheckpointState:
    """The contents of a ``checkpoint`` state file (TensorFlow's CheckpointState)."""

    model_checkpoint_path: str = ""
    all_model_checkpoint_paths: list = dataclasses.field(default_factory=list)
    all_model_checkpoint_timestamps: list = dataclasses.field(default_factory=list)
    last_preserved_timestamp: float = 0.0


class _ParseError(ValueError):
    pass


_STRING_FIELDS = {"model_checkpoint_path", "all_model_checkpoint_paths"}
_DOUBLE_FIELDS = {"all_model_checkpoint_timestamps", "last_preserved_timestamp"}
# A line is "name: value" with optional blanks around both. Split with
# str.partition, not one regex: a regex with a lazy value followed by
# trailing blanks backtracks quadratically on long runs of blanks.
_FIELD_NAME = re.compile(r"[A-Za-z_]+")
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", '"': b'"', "'": b"'", "\\": b"\\",
            "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v", "?": b"?"}


def _unquote(text: str) -> str:
    """Decodes a text-format string literal ("..." or '...', C escapes, octal/hex bytes)."""
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        raise _ParseError(f"expected a quoted string, found {text!r}")
    body = text[1:-1].encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i : i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        if i + 1 >= len(body):
            raise _ParseError("string ends in a backslash")
        e = chr(body[i + 1])
        if e in "01234567":
            digits = re.match(rb"[0-7]{1,3}", body[i + 1 : i + 4]).group()
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        elif e == "x":
            digits = re.match(rb"[0-9a-fA-F]{1,2}", body[i + 2 : i + 4])
            if digits is None:
                raise _ParseError("bad \\x escape")
            out.append(int(digits.group(), 16))
            i += 2 + len(digits.group())
        elif e in _ESCAPES:
            out += _ESCAPES[e]
            i += 2
        else:
            raise _ParseError(f"unknown escape \\{e}")
    return out.decode("utf-8", errors="surrogateescape")


def _parse_state(text: str) -> CheckpointState:
    state = CheckpointState()
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise _ParseError(f"cannot parse line {line[:200]!r}")
        if name in _STRING_FIELDS:
            value = _unquote(value)
        elif name in _DOUBLE_FIELDS:
            try:
                value = float(value)
            except ValueError:
                raise _ParseError(f"{name}: {value!r} is not a number") from None
        else:
            raise _ParseError(f"unknown field {name!r}")
        if name.startswith("all_"):
            getattr(state, name).append(value)
        else:
            setattr(state, name, value)
    return state


# A state file names a few checkpoints; anything this large is not one.
MAX_STATE_BYTES = 16 << 20


def _read_state_file(path: str) -> str:
    return read_regular_file(path, MAX_STATE_BYTES, "checkpoint state").decode("utf-8")


def read_regular_file(path: str, limit: int, what: str) -> bytes:
    """The bytes of a small file (a state or metrics file). Refuses, without
    blocking or reading it, a FIFO, device, socket or directory
    (FailedPreconditionError), and a file over ``limit`` bytes
    (ResourceExhaustedError); both name ``what`` and the path. Errors of
    open and read are raised as they are (FileNotFoundError, ...)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FailedPreconditionError(
                f"{what} {path} is not a regular file ({_file_kind(st.st_mode)})")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ResourceExhaustedError(
                    f"{what} {path} is larger than {limit} bytes: refusing to read it")
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _state_path(checkpoint_dir, latest_filename) -> str:
    return os.path.join(local_path(checkpoint_dir), latest_filename or STATE_FILENAME)


def get_checkpoint_state(checkpoint_dir, latest_filename=None) -> CheckpointState | None:
    """Reads the ``checkpoint`` file of ``checkpoint_dir``.

    Relative paths in it are joined onto ``checkpoint_dir``. Returns None when
    the file does not exist, or (with a logged warning, as TensorFlow) cannot
    be read or parsed. Raises ValueError when it names no checkpoint,
    FailedPreconditionError when it is not a regular file (a FIFO, a device,
    a directory) and ResourceExhaustedError when it is over 16 MiB.

    Example::

        state = trackpoint.get_checkpoint_state("/tmp/run")
        state.all_model_checkpoint_paths   # ["/tmp/run/ckpt-3", "/tmp/run/ckpt-4"]
    """
    return read_checkpoint_state(checkpoint_dir, latest_filename, strict=False)


def read_checkpoint_state(checkpoint_dir, latest_filename=None, *, strict: bool = True):
    """get_checkpoint_state; with ``strict``, a state file that exists but
    cannot be read (EACCES, EIO, ...) raises the trackpoint error naming it
    instead of reading as no state: what a CheckpointManager uses, so that
    it never starts over beside checkpoints it could not see."""
    checkpoint_dir = local_path(checkpoint_dir)
    path = _state_path(checkpoint_dir, latest_filename)
    try:
        text = _read_state_file(path)
    except FileNotFoundError:
        return None
    except CheckpointError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        if strict and isinstance(e, OSError):
            raise from_os_error(e, f"cannot read checkpoint state {path}") from e
        _log.warning("cannot read checkpoint state %s: %s", path, e)
        return None
    try:
        state = _parse_state(text)
    except _ParseError as e:
        _log.warning("%s: cannot parse checkpoint state: %s", path, e)
        return None
    if not state.model_checkpoint_path:
        raise ValueError(f"Invalid checkpoint state loaded from {checkpoint_dir}")

    def absolute(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(checkpoint_dir, p)

    state.model_checkpoint_path = absolute(state.model_checkpoint_path)
    state.all_model_checkpoint_paths = [absolute(p) for p in state.all_model_checkpoint_paths]
    return state


def latest_checkpoint(checkpoint_dir, latest_filename=None) -> str | None:
    """The prefix of the newest checkpoint in ``checkpoint_dir``, or None.

    Reads the ``checkpoint`` state file; returns its latest path only if that
    checkpoint's ``.index`` file exists.

    Example::

        prefix = trackpoint.latest_checkpoint("/tmp/run")
        if prefix is not None:
            ckpt.restore(prefix)
    """
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is None:
        return None
    path = state.model_checkpoint_path
    if os.path.exists(path + ".index") or os.path.isfile(path):
        return path
    _log.error("Couldn't match files for checkpoint %s", path)
    return None


def _quote(text: str) -> str:
    """A text-format string literal: quotes, backslashes and control characters
    escaped, other characters kept as UTF-8 (as protobuf's Python runtime writes)."""
    out = []
    for c in text:
        if c in "\"'\\":
            out.append("\\" + c)
        elif c in _CONTROL_ESCAPES:
            out.append(_CONTROL_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\%03o" % ord(c))
        elif 0xDC80 <= ord(c) <= 0xDCFF:  # a byte that was not UTF-8, as read
            out.append(f"\\{ord(c) - 0xDC00:03o}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _format_state(state: CheckpointState) -> str:
    lines = [f"model_checkpoint_path: {_quote(state.model_checkpoint_path)}"]
    lines += [f"all_model_checkpoint_paths: {_quote(p)}" for p in state.all_model_checkpoint_paths]
    lines += [f"all_model_checkpoint_timestamps: {t!r}"
              for t in map(float, state.all_model_checkpoint_timestamps)]
    if state.last_preserved_timestamp:
        lines.append(f"last_preserved_timestamp: {float(state.last_preserved_timestamp)!r}")
    return "\n".join(lines) + "\n"


def write_atomically(path: str, data: bytes, sync_dir: bool = True) -> str | None:
    """Replaces ``path`` with ``data``: a temporary file in the same directory,
    fsynced, renamed over ``path`` (the commit point), then the directory
    fsynced.

    Raises a trackpoint error naming the file (ResourceExhaustedError for a
    full disk, PermissionDeniedError, UnavailableError for EIO, ...) only
    while ``path`` still holds its old contents; the temporary file is gone
    then. After the rename nothing raises: a failed directory fsync is tried
    once more, and if it fails again it is logged and its description
    returned (the new contents are in place but may not survive a crash).
    Returns None when all went well. ``sync_dir=False`` leaves the directory
    fsync out, for a replacement that may be lost in a crash as long as the
    file it replaces is valid.

    Example::

        problem = write_atomically("/tmp/run/checkpoint", b"...")
    """
    directory = os.path.dirname(path) or "."
    tmp = f"{path}.tmp{uuid.uuid4().hex}"
    step = f"cannot write {tmp}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            step = f"cannot fsync {tmp}"
            os.fsync(f.fileno())
            step = f"cannot close {tmp}"
        step = f"cannot rename {tmp} to {path}"
        os.replace(tmp, path)
    except BaseException as e:
        _remove_quietly(tmp)
        if isinstance(e, OSError):
            raise from_os_error(e, step) from e
        if isinstance(e, ValueError):  # a NUL byte in the path
            raise InvalidArgumentError(f"{step}: {e}") from e
        raise
    return sync_directory_after_commit(directory) if sync_dir else None


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def sync_directory(directory: str) -> None:
    """fsyncs a directory (its entries become durable); raises a trackpoint
    error naming it."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise from_os_error(e, f"cannot open directory {directory} to fsync it") from e
    try:
        os.fsync(fd)
    except OSError as e:
        _close_quietly(fd)  # the fsync's error is the one to report
        raise from_os_error(e, f"cannot fsync directory {directory}") from e
    try:
        os.close(fd)
    except OSError as e:
        raise from_os_error(e, f"cannot close directory {directory} after fsyncing it") from e


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def sync_directory_after_commit(directory: str) -> str | None:
    """sync_directory after a commit point: tried twice, never raises; returns
    (and logs) what went wrong, or None."""
    try:
        sync_directory(directory)
        return None
    except CheckpointError as first:
        _log.warning("%s; trying again", first)
    try:
        sync_directory(directory)
        return None
    except CheckpointError as e:
        _log.error("%s: a crash may still lose the last change in it", e)
        return str(e)


def make_directories(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)``, and every directory it creates
    made durable: each one fsynced, and the existing directory above the
    first one too, so a crash cannot take the new directories away after
    this returns. Raises a trackpoint error naming the directory.

    Example::

        make_directories("/tmp/run/a/b")   # creates a, b; fsyncs b, a, /tmp/run
    """
    path = os.path.abspath(os.fspath(path))
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not missing:
        return
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise AlreadyExistsError(
                    f"cannot create directory {directory}: a file of that name exists") from None
        except OSError as e:
            raise from_os_error(e, f"cannot create directory {directory}") from e
        except ValueError as e:
            raise InvalidArgumentError(f"cannot create directory {directory!r}: {e}") from e
    for directory in missing + [os.path.dirname(missing[-1])]:
        sync_directory(directory)


def update_checkpoint_state(
    save_dir,
    model_checkpoint_path,
    all_model_checkpoint_paths=None,
    latest_filename=None,
    all_model_checkpoint_timestamps=None,
    last_preserved_timestamp=None,
    save_relative_paths=False,
) -> None:
    """Writes the ``checkpoint`` state file of ``save_dir``, atomically.

    As TensorFlow's function does: paths are stored as given (relative ones
    relative to ``save_dir`` when ``save_dir`` itself is relative),
    ``model_checkpoint_path`` is appended to the list when it is not its last
    element, and timestamps must match the paths one for one. With
    ``save_relative_paths=True`` (what ``Checkpoint.save`` and
    ``CheckpointManager`` use) absolute paths are stored relative to
    ``save_dir``, so the directory can be moved.

    Raises a trackpoint error (ResourceExhaustedError, PermissionDeniedError,
    UnavailableError, ...) naming the file when the state file could not be
    replaced; once replaced, nothing raises (see write_atomically).

    Example::

        trackpoint.update_checkpoint_state("/tmp/run", "/tmp/run/ckpt-3")
    """
    update_state_file(save_dir, model_checkpoint_path, all_model_checkpoint_paths, latest_filename,
                  all_model_checkpoint_timestamps, last_preserved_timestamp, save_relative_paths)


def update_state_file(save_dir, model_checkpoint_path, all_model_checkpoint_paths=None,
                  latest_filename=None, all_model_checkpoint_timestamps=None,
                  last_preserved_timestamp=None, save_relative_paths=True,
                  sync_dir=True) -> str | None:
    """update_checkpoint_state; returns what went wrong after the commit point
    (see write_atomically), or None."""
    save_dir = local_path(save_dir)
    model_checkpoint_path = local_path(model_checkpoint_path)
    paths = [local_path(p) for p in (all_model_checkpoint_paths or [])]

    def stored(p: str) -> str:
        if save_relative_paths and os.path.isabs(p):
            return os.path.relpath(p, save_dir)
        if not os.path.isabs(save_dir) and not os.path.isabs(p):
            return os.path.relpath(p, save_dir)
        return p

    model = stored(model_checkpoint_path)
    paths = [stored(p) for p in paths]
    if not paths or paths[-1] != model:
        paths.append(model)
    timestamps = list(all_model_checkpoint_timestamps or [])
    if timestamps and len(timestamps) != len(paths):
        raise ValueError(
            f"Checkpoint timestamps, if provided, must match checkpoint paths "
            f"({len(timestamps)} timestamps for {len(paths)} paths)"
        )
    state_path = _state_path(save_dir, latest_filename)
    if os.path.abspath(os.path.join(save_dir, model)) == os.path.abspath(state_path):
        raise ValueError(f"Save path '{model_checkpoint_path}' conflicts with path used for "
                         "checkpoint state. Please use a different save path.")
    state = CheckpointState(model, paths, timestamps, last_preserved_timestamp or 0.0)
    make_directories(save_dir or ".")
    return write_atomically(state_path, _format_state(state).encode("utf-8"), sync_dir)


# Seconds between polls of the state file (tests shorten it).
_POLL_SECONDS = 1.0


def _wait_for_new_checkpoint(checkpoint_dir, last_checkpoint, timeout):
    stop_at = None if timeout is None else time.time() + timeout
    while True:
        path = latest_checkpoint(checkpoint_dir)
        if path is not None and path != last_checkpoint:
            return path
        if stop_at is not None and time.time() + _POLL_SECONDS > stop_at:
            return None
        time.sleep(_POLL_SECONDS)


def checkpoints_iterator(checkpoint_dir, min_interval_secs=0, timeout=None, timeout_fn=None):
    """Yields each new checkpoint of ``checkpoint_dir`` as it appears.

    Polls ``latest_checkpoint(checkpoint_dir)`` and yields a path whenever it
    changes, at most once per ``min_interval_secs``; checkpoints written in
    between are skipped. Only complete checkpoints are ever yielded (the state
    file names a checkpoint after its files are durable). When no new
    checkpoint arrives within ``timeout`` seconds, the iterator ends, unless
    ``timeout_fn`` is given and returns False, in which case it keeps waiting.

    Example::

        for path in trackpoint.checkpoints_iterator("/tmp/run", timeout=600):
            evaluate(path)
    """
    checkpoint_dir = local_path(checkpoint_dir)
    last = None
    while True:
        path = _wait_for_new_checkpoint(checkpoint_dir, last, timeout)
        if path is None:
            if timeout_fn is None or timeout_fn():
                return
            continue
        start = time.time()
        last = path
        yield path
        remaining = start + min_interval_secs - time.time()
        if remaining > 0:
            time.sleep(remaining)
