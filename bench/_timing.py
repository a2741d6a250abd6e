"""Timing helpers shared by the benchmarks: best-of-N wall time, ratios measured in one run."""

import argparse
import time
from typing import Callable, Dict, Optional, Sequence, Tuple


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


def best_times(
    fns: Dict[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> Dict[str, float]:
    """Minimum wall time of each function over `rounds` rounds that call every function once, in
    turn: a disturbance of the (shared, noisy) machine then hits all of them alike, so ratios
    between them stay fair."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def add_markdown_argument(parser) -> None:
    """The `--markdown FILE` option every bench script takes (bench/run_all.py passes it)."""
    parser.add_argument(
        "--markdown", metavar="FILE", help="append this run's tables to FILE as a Markdown section"
    )


def append_markdown(
    path: Optional[str], title: str, tables: Sequence[Tuple[str, list, list]]
) -> None:
    """Appends a `## title` section with one Markdown table per (caption, header, rows) to `path`
    (nothing when `path` is None)."""
    if path is None:
        return
    lines = [f"## {title}", ""]
    for caption, header, rows in tables:
        if caption:
            lines += [caption, ""]
        lines.append("| " + " | ".join(str(x) for x in header) + " |")
        lines.append("|" + "|".join("---:" for _ in header) + "|")
        lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
        lines.append("")
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


def parse_arguments(description: str, quick_help: str) -> argparse.Namespace:
    """The options every benchmark takes: `--quick` (a short run) and `--markdown FILE`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    add_markdown_argument(parser)
    return parser.parse_args()
