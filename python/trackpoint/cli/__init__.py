"""The ``trackpoint`` command (also ``python -m trackpoint``).

::

    trackpoint inspect PATH [--tensor NAME]... [--all] [--json] [--from FORMAT]
    trackpoint graph PATH [--keys] [--skip-empty] [--json]
    trackpoint verify PATH [--json]
    trackpoint diff A B [--atol X] [--shapes-only] [--json]
    trackpoint convert SRC DST [--from F] [--to F] [--map PATTERN=REPLACEMENT]...
                               [--exclude REGEX]... [--transpose REGEX[=AXES]]...
                               [--preset tf-to-torch] [--skip-unsupported]
                               [--overwrite] [--dry-run]

Exit status: 0 success; 1 ``verify`` found a problem or ``diff`` found a
difference; 2 a usage error or a file that cannot be read, reported as one
line on stderr (``--debug`` shows the traceback instead).

Example::

    from trackpoint.cli import main
    main(["verify", "/tmp/run"])      # returns the exit status
"""

from __future__ import annotations

import argparse
import os
import sys

from ._check import add_diff, add_verify
from ._convert import add_convert
from ._inspect import add_graph, add_inspect
from ._progress import set_enabled

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (and exit status 2), not a usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="trackpoint",
        description="Inspect, verify, compare and convert TensorFlow-format checkpoints "
        "without TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=f"trackpoint {__version__}")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they show only on a terminal, with tqdm or rich)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback instead of a one-line error"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for add in (add_inspect, add_graph, add_verify, add_diff, add_convert):
        add(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    first = text.splitlines()[0] if text else ""
    return first or type(error).__name__


def main(argv=None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``) and returns the exit status."""
    args = build_parser().parse_args(argv)
    set_enabled(not args.no_progress)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("trackpoint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `trackpoint inspect ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        if args.debug:
            raise
        from ..errors import CheckpointError
        from ._util import UsageError

        known = isinstance(e, (CheckpointError, UsageError, OSError, ValueError))
        prefix = "" if known else f"{type(e).__name__}: "
        print(f"trackpoint: error: {prefix}{_one_line(e)}", file=sys.stderr)
        return 2
