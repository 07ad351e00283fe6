"""Progress bars for long work, from tqdm or rich when one is installed.

Drawn on stderr, only when it is a terminal, and removed when done; without
either package (or with ``--no-progress``) this does nothing.
"""

from __future__ import annotations

import sys

_enabled = True


def set_enabled(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


class Progress:
    """``with Progress(total_bytes, "verify") as p: ... p.update(n) ...``

    With total None, the bar starts at the first :meth:`advance_to`, which
    gives the total."""

    def __init__(self, total: int | None, desc: str):
        self._update = self._close = lambda *a: None
        self._desc = desc
        self._done = 0
        self._started = total is not None
        if total is not None:
            self._start(total)

    def _start(self, total: int) -> None:
        self._started = True
        desc = self._desc
        if not (_enabled and total > 0 and sys.stderr.isatty()):
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self._start_rich(total, desc)
            return
        bar = tqdm(
            total=total,
            desc=desc,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            leave=False,
            file=sys.stderr,
        )
        self._update, self._close = bar.update, bar.close

    def _start_rich(self, total: int, desc: str) -> None:
        try:
            from rich.console import Console
            from rich.progress import Progress as RichProgress
        except ImportError:
            return
        bar = RichProgress(console=Console(stderr=True), transient=True)
        task = bar.add_task(desc, total=total)
        bar.start()
        self._update = lambda n: bar.update(task, advance=n)
        self._close = bar.stop

    def update(self, n: int) -> None:
        self._done += n
        self._update(n)

    def advance_to(self, done: int, total: int) -> None:
        """Moves the bar to ``done`` of ``total`` (starting it if needed)."""
        if not self._started:
            self._start(total)
        if done > self._done:
            self.update(done - self._done)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self._close()
