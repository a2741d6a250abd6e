"""Timing helpers shared by the benchmarks: best-of-N wall time, ratios measured in one run."""

import argparse
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


def parse_arguments(description: str, quick_help: str) -> argparse.Namespace:
    """The options every benchmark takes: `--quick` (a short run) and `--markdown FILE`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument(
        "--markdown", metavar="FILE", help="append this run's table to FILE as a Markdown section"
    )
    return parser.parse_args()


def append_markdown(path, title: str, header, rows, note: str = "") -> None:
    """Appends a `## title` section holding the table (and a note under it) to `path`."""
    if not path:
        return
    lines = [f"## {title}", ""]
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(map(str, header)) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    with open(path, "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n\n")
