"""LowRankBlend speed: native kernel vs composite (eager), composite under XLA and a bare
tf.matmul(B, C), all measured in this run. Prints times and ratios to the bare matmul.

    python bench/bench_low_rank_blend.py [--quick]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import best_time, print_table  # noqa: E402
from tf_matcomp import ops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1024² only, fewer repeats")
    args = parser.parse_args()
    sizes = [1024] if args.quick else [1024, 4096]
    repeats = 3 if args.quick else 7
    print(
        f"TensorFlow {tf.__version__}, native: {ops.native_unavailable_reason()}, "
        f"intra-op threads: {tf.config.threading.get_intra_op_parallelism_threads() or 'all'}"
    )
    rng = np.random.default_rng(0)
    xla_blend = tf.function(
        lambda a, b, c, alpha: ops.low_rank_blend(a, b, c, alpha, implementation="composite"),
        jit_compile=True,
    )
    header = [
        "m=n",
        "k",
        "matmul ms",
        "native ms",
        "composite ms",
        "xla ms",
        "native/matmul",
        "native/composite",
        "native/xla",
    ]
    rows = []
    for size in sizes:
        for k in (64, 256, 1024):
            a, b, c = (
                tf.constant(rng.standard_normal(shape, dtype=np.float32))
                for shape in ((size, size), (size, k), (k, size))
            )
            alpha = tf.constant(0.3)
            t_matmul = best_time(lambda: tf.matmul(b, c), repeats)
            t_native = best_time(lambda: ops.low_rank_blend(a, b, c, alpha, "native"), repeats)
            t_comp = best_time(lambda: ops.low_rank_blend(a, b, c, alpha, "composite"), repeats)
            t_xla = best_time(lambda: xla_blend(a, b, c, alpha), repeats, warmup=2)
            rows.append(
                [
                    size,
                    k,
                    f"{t_matmul * 1e3:.2f}",
                    f"{t_native * 1e3:.2f}",
                    f"{t_comp * 1e3:.2f}",
                    f"{t_xla * 1e3:.2f}",
                    f"{t_native / t_matmul:.2f}",
                    f"{t_native / t_comp:.2f}",
                    f"{t_native / t_xla:.2f}",
                ]
            )
    print_table(header, rows)


if __name__ == "__main__":
    main()
