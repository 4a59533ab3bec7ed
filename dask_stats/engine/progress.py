"""Where a long run is: the phases before and after the episode bar (planning and checking, verifying,
writing), each shown as a one-step tqdm bar in the style of the episode bar, on stderr.

A phase is shown once it has lasted ``delay`` seconds (short phases of small datasets print nothing), its
elapsed time ticking while it runs, and stays as one line at 100% when it ends; ``quiet`` shows nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]"


class Phases:
    """``with phases("planning"): ...`` shows that phase while it runs (nothing when ``quiet``)."""

    def __init__(self, quiet: bool = False, delay: float = 0.5, interval: float = 0.5):
        self.quiet, self.delay, self.interval = quiet, delay, interval

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.quiet:
            yield
            return
        bar = tqdm(total=1, desc=name, bar_format=BAR_FORMAT, delay=self.delay, mininterval=0.1)
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(bar, stop), daemon=True, name=f"dask_stats-{name}")
        ticker.start()
        try:
            yield
        except BaseException:
            stop.set()
            ticker.join()
            bar.leave = False  # the error says what happened; no half-done bar above it
            bar.close()
            raise
        stop.set()
        ticker.join()
        bar.update(1)
        bar.close()

    def _tick(self, bar: tqdm, stop: threading.Event) -> None:
        """Show the bar after ``delay`` seconds and refresh its elapsed time (no work reports progress meanwhile)."""
        if stop.wait(self.delay):
            return
        while True:
            bar.update(0)  # displays once ``delay`` has passed, then every ``interval``
            if stop.wait(self.interval):
                return
