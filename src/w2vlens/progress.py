"""Progress of long work, as researchers expect it: a tqdm bar when stderr is a terminal, and in
non-interactive logs (a multirun job, `nohup`, SLURM) a log line every tenth of the work with the
rate and an estimated time left, instead of a bar redrawn thousands of times into the file.

    with Progress(total=len(queries), desc="kNN graph", unit="rows") as progress:
        for block in blocks:
            ...
            progress.update(len(block))

Work that ends within `quiet_seconds` logs nothing (tests, small data); longer work logs its
total time when it ends.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from tqdm import tqdm

log = logging.getLogger("w2vlens")
T = TypeVar("T")


def interactive() -> bool:
    """Whether stderr is a terminal (bars) rather than a log file (log lines)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def duration(seconds: float) -> str:
    """`12s`, `3m05s`, `1h02m`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts `total` units of work named `desc`: a tqdm bar on a terminal (`bar=None`: decided by
    `interactive()`), else a log line at every `every` fraction of the total once `quiet_seconds`
    have passed, with the rate and the time left."""

    def __init__(self, total: float, desc: str, unit: str = "it", every: float = 0.1, quiet_seconds: float = 2.0,
                 bar: bool | None = None) -> None:
        self.total, self.desc, self.unit, self.every, self.quiet_seconds = total, desc, unit, every, quiet_seconds
        self.done = 0.0
        self.start = time.perf_counter()
        self.reported = False
        self.next_report = every
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True) \
            if (interactive() if bar is None else bar) else None

    def update(self, n: float = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        if not self.total or self.done >= self.total:
            return
        fraction = self.done / self.total
        if fraction < self.next_report:
            return
        self.next_report = (int(fraction / self.every) + 1) * self.every
        elapsed = time.perf_counter() - self.start
        if elapsed < self.quiet_seconds:
            return
        left = elapsed * (self.total - self.done) / self.done
        log.info("%s: %.0f%% (%s of %s %s), %s elapsed, about %s left", self.desc, 100 * fraction,
                 _count(self.done), _count(self.total), self.unit, duration(elapsed), duration(left))
        self.reported = True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elapsed = time.perf_counter() - self.start
        if self.reported or elapsed >= self.quiet_seconds:
            log.info("%s: done, %s %s in %s", self.desc, _count(self.done), self.unit, duration(elapsed))
        self.bar, self.reported, self.quiet_seconds = None, False, float("inf")  # closing twice logs once

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        elif self.bar is not None:
            self.bar.close()


def progress_iter(iterable: Iterable[T], desc: str, total: float | None = None, unit: str = "it",
                  **settings: object) -> Iterator[T]:
    """The items of `iterable`, counted by a `Progress` (`total` defaults to its length)."""
    if total is None:
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, unit, **settings) as progress:
        for item in iterable:
            yield item
            progress.update()


def _count(value: float) -> str:
    return f"{value:,.0f}"
