"""Progress for long CLI work: a redrawn bar on a terminal, one plain line per step elsewhere.

A :class:`Progress` reports steps such as "seed 1/1 epoch 3/6". Between :meth:`Progress.start`
and :meth:`Progress.finish` the caller reports work with :meth:`Progress.advance`; on a
terminal a bar with the rate (examples per second) is redrawn at most 10 times a second, and
:meth:`Progress.finish` replaces it with a final line. When the stream is not a terminal (a log
file, CI) only the final line of each step is written, so logs stay short. ``quiet=True``
writes nothing. Everything goes to stderr by default: stdout stays for results.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BAR_WIDTH = 24
_REDRAW_SECONDS = 0.1


def format_rate(count: float, seconds: float, unit: str = "ex") -> str:
    """``"12,345 ex/s"``; ``"-"`` when no time has passed.

    Examples
    --------
    >>> format_rate(1000, 0.5)
    '2,000 ex/s'
    """
    if seconds <= 0:
        return f"- {unit}/s"
    return f"{count / seconds:,.0f} {unit}/s"


class Progress:
    """Per-step progress on ``stream`` (default stderr).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(stream=out, tty=False)
    >>> p.start("epoch 1/2", total=100)
    >>> p.advance(100)
    >>> seconds = p.finish("train acc 0.9")
    >>> out.getvalue().startswith("epoch 1/2: 100 ex in ")
    True
    """

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None,
                 tty: bool | None = None, unit: str = "ex") -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.unit = unit
        self._label = ""
        self._total = 0
        self._done = 0
        self._t0 = 0.0
        self._last_draw = 0.0
        self._active = False

    def message(self, text: str) -> None:
        """A status line (e.g. "featurizing 13,891 texts")."""
        if self.quiet:
            return
        self._clear()
        print(text, file=self.stream, flush=True)

    def start(self, label: str, total: int) -> None:
        """Begin a step of ``total`` units."""
        self._label, self._total, self._done = label, max(int(total), 0), 0
        self._t0 = self._last_draw = time.perf_counter()
        self._active = True
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        """Report ``n`` more units done in the current step."""
        self._done += int(n)
        self._draw()

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        return time.perf_counter() - self._t0

    def finish(self, note: str = "") -> float:
        """End the step with one line (count, time, rate and ``note``); returns its seconds."""
        seconds = self.elapsed
        self._active = False
        if not self.quiet:
            line = (f"{self._label}: {self._done:,} {self.unit} in {seconds:.1f} s "
                    f"({format_rate(self._done, seconds, self.unit)})")
            if note:
                line += f"  {note}"
            self._clear()
            print(line, file=self.stream, flush=True)
        return seconds

    def _draw(self, force: bool = False) -> None:
        if self.quiet or not self.tty or not self._active:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        frac = min(self._done / self._total, 1.0) if self._total else 0.0
        filled = int(round(frac * _BAR_WIDTH))
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        text = (f"\r{self._label} [{bar}] {self._done:,}/{self._total:,} "
                f"{format_rate(self._done, now - self._t0, self.unit)}")
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\x1b[K")
