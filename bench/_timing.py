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


def markdown_table(header, rows) -> str:
    """A GitHub Markdown table of `header` and `rows` (cells as printed)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def append_markdown(path: str, heading: str, parts) -> None:
    """Appends one `## heading` section made of `parts` (paragraphs or tables) to `path`."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\n## {heading}\n\n" + "\n".join(parts))
