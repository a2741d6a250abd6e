"""The portable build's ISA levels against a build for this CPU only (-march=native): the same
workloads of every native op and `_core`, each library in its own process, rounds interleaved
so that a noisy machine disturbs every library alike. Prints ms and the ratio to native.

    python bench/bench_isa.py --native DIR [--portable DIR] [--quick] [--markdown FILE]

DIR is a checkout (or package parent) whose `tf_matcomp/` holds built libraries: `--native`
one built with TF_MATCOMP_MARCH=native, `--portable` (default: this checkout) a default build.
Without a native build the portable levels are compared with the x86-64-v2 baseline.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import add_markdown_argument, append_markdown, print_table  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Runs in the measured process: best-of-N ms of each workload on the library it loads.
_WORKER = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
from tf_matcomp import _core, ops
size, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
b = tf.constant(rng.standard_normal((size, 256), dtype=np.float32))
c = tf.constant(rng.standard_normal((256, size), dtype=np.float32))
a_np = a.numpy()
work = {
    "low_rank_blend k=256": lambda: ops.low_rank_blend(a, b, c, 0.3, implementation="native"),
    "kmeans 16 levels": lambda: ops.kmeans_quantize(a, 16, implementation="native"),
    "kmeans 64x4 blocks": lambda: ops.kmeans_quantize(
        a, 64, block_size=4, max_iterations=5, implementation="native"),
    "simhash 513 bits": lambda: ops.simhash_compress(a, 513, implementation="native"),
    "_core simhash 513 bits": lambda: _core.simhash_compress(a_np, 513),
}
times = {}
for name, fn in work.items():
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if isinstance(out, (tuple, list)):
            [np.asarray(x) for x in out]
        else:
            np.asarray(out)
        best = min(best, time.perf_counter() - start)
    times[name] = 1e3 * best
print(json.dumps({"library": ops._loader.native_library().path, "core": _core.__name__,
                  "times": times}))
"""


def _measure(package_parent, level, size, repeats):
    env = dict(os.environ, PYTHONPATH=package_parent, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_MATCOMP_OPS_LIBRARY", None)
    if level:
        env["TF_MATCOMP_ISA"] = level
    # `python -c` puts its working directory first on sys.path: run it in the package parent,
    # or a tf_matcomp in the caller's directory would shadow the one measured.
    result = subprocess.run(
        [sys.executable, "-c", _WORKER, str(size), str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        cwd=package_parent,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = os.path.join(os.path.abspath(package_parent), "tf_matcomp", "")
    if not report["library"].startswith(expected):
        sys.exit(f"measured {report['library']}, not a library in {expected}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--native", help="checkout with a TF_MATCOMP_MARCH=native build")
    parser.add_argument("--portable", default=REPO, help="checkout with a default build")
    parser.add_argument("--quick", action="store_true", help="1024², fewer rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    add_markdown_argument(parser)
    args = parser.parse_args()
    size = 1024 if args.quick else 2048
    rounds = args.rounds or (2 if args.quick else 4)
    repeats = 3 if args.quick else 5
    sys.path.insert(0, args.portable)
    from tf_matcomp import _isa

    package = os.path.join(args.portable, "tf_matcomp")
    built = [
        level
        for level in _isa.preferred_levels()
        if os.path.exists(os.path.join(package, _isa.ops_library_file(level)))
    ]
    if not built:
        sys.exit(
            f"no portable build in {package} for this CPU's levels (build it with setup.py "
            "and TF_MATCOMP_MARCH unset)"
        )
    builds = [(f"portable {level}", args.portable, level) for level in built]
    builds.append(("portable x86-64-v2", args.portable, "x86-64-v2"))
    if args.native:
        builds.insert(0, ("native", args.native, None))
    best = {}
    for _ in range(rounds):  # interleaved: each round measures every build once
        for label, parent, level in builds:
            report = _measure(parent, level, size, repeats)
            for name, ms in report["times"].items():
                key = (label, name)
                best[key] = min(best.get(key, float("inf")), ms)
    baseline = builds[0][0]
    workloads = sorted({name for _, name in best})
    header = ["workload", f"{baseline} ms"] + [
        f"{label} / {baseline}" for label, _, _ in builds[1:]
    ]
    rows = [
        [name, f"{best[(baseline, name)]:.1f}"]
        + [f"{best[(label, name)] / best[(baseline, name)]:.3f}" for label, _, _ in builds[1:]]
        for name in workloads
    ]
    print(f"{size}², float32, best of {repeats} calls × {rounds} interleaved rounds")
    print_table(header, rows)
    append_markdown(
        args.markdown,
        f"ISA levels vs {baseline} (bench/bench_isa.py, {size}²)",
        [("Ratios above 1 are slower than the first column.", header, rows)],
    )


if __name__ == "__main__":
    main()
