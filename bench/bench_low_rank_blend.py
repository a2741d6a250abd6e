"""LowRankBlend speed: native kernel vs composite (eager), composite under XLA and the memory
bound, all measured in this run, in interleaved rounds (best of each).

The bound is a bare `tf.matmul(B, C)` plus one streaming read of A (`tf.reduce_sum(A)`): at
small k a bare matmul never reads A, which the blend must. `native/bound` ≤ 1.1 and
`native/composite`, `native/xla` ≤ 1 are the goals (issue #14).

    python bench/bench_low_rank_blend.py [--quick] [--markdown FILE]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import add_markdown_argument, append_markdown, best_times, print_table  # noqa: E402
from tf_matcomp import ops  # noqa: E402

HEADER = [
    "m=n",
    "k",
    "matmul ms",
    "read A ms",
    "native ms",
    "composite ms",
    "xla ms",
    "native/bound",
    "native/composite",
    "native/xla",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1024² only, fewer rounds")
    add_markdown_argument(parser)
    args = parser.parse_args()
    sizes = [1024] if args.quick else [1024, 4096]
    rounds = 3 if args.quick else 9
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "all"
    print(
        f"TensorFlow {tf.__version__}, native: {ops.native_unavailable_reason()}, "
        f"intra-op threads: {threads}"
    )
    rng = np.random.default_rng(0)
    xla_blend = tf.function(
        lambda a, b, c, alpha: ops.low_rank_blend(a, b, c, alpha, implementation="composite"),
        jit_compile=True,
    )
    rows = []
    for size in sizes:
        for k in (16, 64, 256, 1024):
            a, b, c = (
                tf.constant(rng.standard_normal(shape, dtype=np.float32))
                for shape in ((size, size), (size, k), (k, size))
            )
            alpha = tf.constant(0.3)
            t = best_times(
                {
                    "matmul": lambda: tf.matmul(b, c),
                    "read": lambda: tf.reduce_sum(a).numpy(),
                    "native": lambda: ops.low_rank_blend(a, b, c, alpha, "native"),
                    "composite": lambda: ops.low_rank_blend(a, b, c, alpha, "composite"),
                    "xla": lambda: xla_blend(a, b, c, alpha),
                },
                rounds,
                warmup=2,
            )
            bound = t["matmul"] + t["read"]
            rows.append(
                [size, k]
                + [
                    f"{t[name] * 1e3:.2f}"
                    for name in ("matmul", "read", "native", "composite", "xla")
                ]
                + [
                    f"{t['native'] / bound:.2f}",
                    f"{t['native'] / t['composite']:.2f}",
                    f"{t['native'] / t['xla']:.2f}",
                ]
            )
    print_table(HEADER, rows)
    append_markdown(
        args.markdown,
        "LowRankBlend (float32, CPU)",
        [
            (
                f"bound = matmul + one streaming read of A; ratios < 1: native faster; intra-op "
                f"threads: {threads}; best of {rounds} interleaved rounds",
                HEADER,
                rows,
            )
        ],
    )


if __name__ == "__main__":
    main()
