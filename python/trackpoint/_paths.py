"""Paths the API accepts: local paths only, for now.

A URL such as ``s3://bucket/run`` is not a local path, but the operating
system would take it as one (a folder named ``s3:`` under the current
directory) and a save would "succeed" on local disk. Every public function
that takes a path passes it through :func:`local_path` first, so a URL is
refused with a clear error instead.
"""

from __future__ import annotations

import os
import re

from .errors import UnimplementedError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def local_path(path) -> str:
    """path as a string; ``file://`` URLs become their local path. Any other
    URL raises UnimplementedError naming it.

    Example::

        local_path("run/ckpt")           # "run/ckpt"
        local_path("file:///tmp/run")    # "/tmp/run"
        local_path("s3://bucket/run")    # UnimplementedError
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    match = _URL.match(path)
    if match is None:
        return path
    scheme = match.group(1).lower()
    if scheme == "file":
        return path[len(match.group(0)):] or "/"
    raise UnimplementedError(
        f"cannot use {path!r}: {scheme}:// URLs are not supported, only local paths "
        f"(a local folder named {scheme + ':'!r} is not what was meant, so nothing was "
        "written or read)"
    )
