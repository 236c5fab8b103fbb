"""The CLI's progress display: live with rich on a terminal, plain periodic lines otherwise.

The live display is laid out for the terminal's width (80 columns and more; narrower ones
get its lines cut with an ellipsis, never wrapped).
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time
from typing import IO, Any, Final

import anyio

from .. import BatchProgress

__all__ = ["CLI_EXTRA_HINT", "Progress", "fit_terminal"]

CLI_EXTRA_HINT: Final = "install the cli extra (pip install -e '.[cli]' in your clone)"
DEFAULT_INTERVAL: Final = 2.0
#: Outcomes of leads that are accounted for but not completed, as the display names them.
UNFINISHED: Final = (
    ("not_submitted", "not submitted"),
    ("submit_failed", "submit failed"),
    ("pending", "pending"),
    ("timed_out", "timed out"),
)
_UNFINISHED_KEYS: Final = frozenset(key for key, _ in UNFINISHED)
#: The live display's bar: this wide at most, and at least MIN_BAR when the terminal allows.
MAX_BAR: Final = 40
MIN_BAR: Final = 10


def fit_terminal(text: str, stream: IO[str] | None = None) -> str:
    """``text`` wrapped to the terminal's width when ``stream`` is one (else as it is).

    Continuation lines are indented, and words (URLs, paths) are never split, so that a
    message on an 80-column terminal reads as a block instead of wrapping mid-word.
    """
    stream = stream or sys.stderr
    try:
        if not stream.isatty():
            return text
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        width = shutil.get_terminal_size().columns
    return "\n".join(
        textwrap.fill(
            line,
            width=max(width, 40),
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        for line in text.splitlines()
    )


class Progress:
    """Counts what the run did and shows it: ``mode`` is "rich", "plain" or "off"."""

    def __init__(
        self,
        total: int | None,
        *,
        mode: str,
        stream: IO[str] | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.total = total
        self.mode = mode
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self.submitted = 0
        self.done = 0
        self.generated = 0
        self.unfinished: dict[str, int] = {}
        """Leads with a record but no answer (not submitted, pending...), by outcome."""
        self._live: Any = None

    @classmethod
    def choose(cls, total: int | None, *, quiet: bool, stream: IO[str] | None = None) -> Progress:
        """Rich on a terminal (when installed), plain lines otherwise, nothing when quiet."""
        stream = stream or sys.stderr
        if quiet:
            return cls(total, mode="off", stream=stream)
        if not stream.isatty():
            return cls(total, mode="plain", stream=stream)
        try:
            import rich  # noqa: F401
        except ImportError:
            print(
                f"upscale-async: for a live progress display, {CLI_EXTRA_HINT}",
                file=stream,
            )
            return cls(total, mode="plain", stream=stream)
        return cls(total, mode="rich", stream=stream)

    # -- counting ----------------------------------------------------------------------------
    def on_batch(self, progress: BatchProgress) -> None:
        """``generate(on_progress=...)``: leads accepted by Upscale so far."""
        self.submitted = progress.leads_submitted

    def record(self, outcome: str) -> None:
        self.done += 1
        if outcome == "generated":
            self.generated += 1
        elif outcome in _UNFINISHED_KEYS:
            self.unfinished[outcome] = self.unfinished.get(outcome, 0) + 1

    @property
    def completed(self) -> int:
        """Leads with a final record: generated, failed or rejected (not those left unsent)."""
        return self.done - sum(self.unfinished.values())

    def _unfinished_text(self, separator: str) -> str:
        return "".join(
            f"{separator}{label} {self.unfinished[key]}"
            for key, label in UNFINISHED
            if self.unfinished.get(key)
        )

    def _known_total(self) -> int | None:
        return self.total if self.total is not None and self.total >= self.done else None

    def _rate_and_eta(self) -> tuple[str, str]:
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        total = self._known_total()
        eta = ""
        if total is not None and rate > 0:
            eta = f"ETA {max(total - self.done, 0) / rate:.0f} s"
        return f"{rate:.1f} leads/s", eta

    def line(self) -> str:
        """The whole state on one line (the plain display)."""
        total = self._known_total()
        done = f"{self.completed}/~{total}" if total is not None else str(self.completed)
        rate, eta = self._rate_and_eta()
        return (
            f"submitted {self.submitted}, completed {done}, generated {self.generated}, "
            f"not generated {self.completed - self.generated}{self._unfinished_text(', ')}, "
            f"{rate}{eta and ', ' + eta}"
        )

    def lines(self) -> list[str]:
        """The live display's text under its bar: short lines (under 60 columns at 10⁷ leads)."""
        rate, eta = self._rate_and_eta()
        return [
            f"submitted {self.submitted} · generated {self.generated} · "
            f"not generated {self.completed - self.generated}{self._unfinished_text(' · ')}",
            f"{rate}{eta and ' · ' + eta}",
        ]

    # -- display -----------------------------------------------------------------------------
    def __rich_console__(self, console: Any, options: Any) -> Any:
        """The live display, fitted to the width rich gives it: a bar and short lines."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        total = self._known_total()
        done = self.completed
        count = f"{done}/~{total} completed" if total is not None else f"{done} completed"
        width = options.max_width
        bar_width = max(MIN_BAR, min(MAX_BAR, width - len(count) - 1))
        row = Table.grid(padding=(0, 1))
        row.add_row(
            ProgressBar(total=total, completed=done, width=bar_width),
            Text(count, no_wrap=True, overflow="ellipsis"),
        )
        yield row
        for text in self.lines():
            yield Text(text, no_wrap=True, overflow="ellipsis")

    def start(self) -> None:
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self, console=Console(file=self.stream), refresh_per_second=4, transient=False
            )
            self._live.start()

    async def run(self) -> None:
        """Print a plain line every ``interval`` seconds (until cancelled)."""
        if self.mode != "plain":
            return
        while True:
            await anyio.sleep(self.interval)
            print(f"upscale-async: {self.line()}", file=self.stream, flush=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self.mode == "plain":
            print(f"upscale-async: {self.line()}", file=self.stream, flush=True)
