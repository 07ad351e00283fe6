"""``python -m trackpoint``: the ``trackpoint`` command (see trackpoint.cli)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
