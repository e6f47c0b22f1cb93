"""A progress bar for the command-line tools, with no dependency.

On a terminal it redraws one line in place; anywhere else (CI logs, pipes)
it prints one plain line per update, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30


class ProgressBar:
    """Progress of ``total`` steps (or of ``seconds`` of wall time when ``total`` is None)."""

    def __init__(
        self, total: int | None, *, seconds: float | None = None, stream: TextIO | None = None
    ) -> None:
        if total is None and seconds is None:
            raise ValueError("a progress bar needs a total or a duration")
        self.total = total
        self.seconds = seconds
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._drawn = False

    def fraction(self, done: int) -> float:
        """How far along we are, from 0 to 1."""
        if self.total is not None:
            return min(1.0, done / self.total) if self.total else 1.0
        assert self.seconds is not None
        return min(1.0, (time.monotonic() - self.started) / self.seconds)

    def update(self, done: int, text: str = "") -> None:
        """Show ``done`` steps finished, with ``text`` after the bar."""
        frac = self.fraction(done)
        filled = round(frac * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        count = f"{done}/{self.total}" if self.total is not None else f"{done}"
        line = f"[{bar}] {frac:4.0%} {count} {text}".rstrip()
        if self._tty:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (on a terminal)."""
        if self._tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
