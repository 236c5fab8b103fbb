"""The CLI's progress display: live with rich on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Final

import anyio

from .. import BatchProgress

__all__ = ["CLI_EXTRA_HINT", "Progress"]

CLI_EXTRA_HINT: Final = "pip install 'upscale_async[cli]'"
DEFAULT_INTERVAL: Final = 2.0


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

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        total = self.total if self.total is not None and self.total >= self.done else None
        done = f"{self.done}/~{total}" if total is not None else str(self.done)
        eta = ""
        if total is not None and rate > 0:
            eta = f", ETA {max(total - self.done, 0) / rate:.0f} s"
        return (
            f"submitted {self.submitted}, completed {done}, generated {self.generated}, "
            f"not generated {self.done - self.generated}, {rate:.1f} leads/s{eta}"
        )

    # -- display -----------------------------------------------------------------------------
    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        total = self.total if self.total is not None and self.total >= self.done else None
        bar = ProgressBar(total=total, completed=self.done, width=40)
        return Group(bar, Text(self.line()))

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
