"""Runs every benchmark of bench/ in one go and collects their tables in one Markdown file.

    python bench/run_all.py [--quick] [--only kmeans,simhash] [--out bench/RESULTS.md]

Each `bench_*.py` runs in its own process with `--markdown FILE` and appends its section; the
file starts with what was measured on (commit, CPU, cores, TensorFlow). A benchmark that fails
or cannot run here (bench_gpu.py without a GPU) is listed with its reason, not dropped.
Timings are best-of-N in one run; compare the ratios, which are measured against a baseline in
the same run, not absolute times across machines.
"""

import argparse
import datetime
import glob
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "RESULTS.md")
# The benchmarks that cannot run everywhere, and what they need.
_WHY_NOT_MEASURED = {
    "gpu": " (bench_gpu.py needs a GPU and the library built with CUDA)",
    "isa": " (bench_isa.py needs a portable build here; see its --native and --portable)",
}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _commit() -> str:
    result = subprocess.run(
        ["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def _header(quick: bool) -> str:
    import tensorflow as tf

    from tf_matcomp import ops

    return (
        "# tf_matcomp benchmarks\n\n"
        f"Written by `python bench/run_all.py{' --quick' if quick else ''}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{_commit()}`: "
        f"{_cpu_model()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, native ops: "
        f"{ops.native_unavailable_reason()}.\n\n"
        "Times are best-of-N wall times; ratios are against the baseline named in each table, "
        "measured in the same run.\n\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark's --quick sizes")
    parser.add_argument("--only", default="", help="comma-separated names, e.g. kmeans,simhash")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"Markdown file (default {DEFAULT_OUT})")
    args = parser.parse_args()
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    names = [os.path.basename(s)[len("bench_") : -len(".py")] for s in scripts]
    wanted = [n for n in args.only.split(",") if n]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        parser.error(f"--only: unknown benchmarks {unknown}; known: {names}")
    sections, failed = [_header(args.quick)], []
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for script, name in zip(scripts, names):
        if wanted and name not in wanted:
            continue
        with tempfile.NamedTemporaryFile("r", suffix=".md") as section:
            command = [sys.executable, script, "--markdown", section.name]
            print(f"== {' '.join(command[1:])}{' --quick' if args.quick else ''}", flush=True)
            result = subprocess.run(command + (["--quick"] if args.quick else []), env=env)
            text = section.read()
        if result.returncode == 0 and text.strip():
            sections.append(text.rstrip() + "\n\n")
        else:
            failed.append(name)
            sections.append(
                f"## bench_{name}.py\n\nNot measured: exit status {result.returncode}"
                f"{_WHY_NOT_MEASURED.get(name, '')}.\n\n"
            )
    with open(args.out, "w") as f:
        f.write("".join(sections))
    print(f"wrote {args.out}; not measured: {', '.join(failed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    sys.exit(main())
