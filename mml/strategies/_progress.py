"""Per-job progress lines with an ETA: the effect a sweep or cross-validation prints as jobs finish.

It only reads outcomes (the numbers never depend on it) and writes one line per finished job
to ``stderr``: ``[sweep] trial 3/8 completed in 1.2 s; 3 done, ETA 6.0 s``.

>>> import io
>>> from mml.strategies import RunOutcome
>>> from mml.training import History
>>> out = io.StringIO()
>>> report = JobProgress("sweep", "trial", 2, stream=out, clock=iter([0.0, 1.0, 2.0]).__next__)
>>> report(0, RunOutcome(History(), "completed")); report(1, RunOutcome(History(), "failed"))
>>> print(out.getvalue().strip())
[sweep] trial 1/2 completed after 1.0 s; 1 done, ETA 1.0 s
[sweep] trial 2/2 failed after 2.0 s; 2 done, ETA 0.0 s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["JobProgress"]


class JobProgress:
    """Prints one line per finished job: its index, status, the time so far and the ETA (not a value).

    ``already`` jobs of the ``n`` were done before (loaded from a sweep directory): the ETA is
    the mean time of this run's jobs times the jobs left.
    """

    def __init__(
        self,
        what: str,
        item: str,
        n: int,
        *,
        already: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.what, self.item, self.n, self.already = what, item, n, already
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.t0 = clock()
        self.done = 0

    def __call__(self, index: int, outcome: Any) -> None:
        self.done += 1
        elapsed = self.clock() - self.t0
        done = self.already + self.done
        eta = elapsed / self.done * (self.n - done)
        print(
            f"[{self.what}] {self.item} {index + 1}/{self.n} {outcome.status} after {elapsed:.1f} s; "
            f"{done} done, ETA {eta:.1f} s",
            file=self.stream,
        )
