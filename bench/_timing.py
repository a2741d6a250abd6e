"""Timing helpers shared by the benchmarks: best-of-N wall time, ratios measured in one run."""

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Minimum wall time of `repeats` calls after `warmup` calls (least disturbed by noise)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def print_table(header, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    for row in [header] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))
