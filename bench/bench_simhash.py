"""SimhashCompress speed and simhash reconstruction error, all measured in this run.

Speed: native kernel vs composite (eager, TF's own kernels) vs composite under XLA
(`jit_compile=True`) at 1024² and 4096², num_bits m/4 and 1025; ratios are composite time over
native time (> 1: the kernel is faster). Error: ‖Â − A‖/‖A‖ at num_bits m/4 and m on N(0, 1)
and on a rank-32-plus-10%-noise matrix, least-squares vs norm (peer) scaling.

    python bench/bench_simhash.py [--quick]
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


def low_rank_plus_noise(
    rng: np.random.Generator, size: int, rank: int = 32, noise: float = 0.1
) -> np.ndarray:
    """U·V/√rank (entries ~ unit variance) plus `noise`·N(0, 1)."""
    low_rank = rng.standard_normal((size, rank)) @ rng.standard_normal((rank, size))
    return (low_rank / np.sqrt(rank) + noise * rng.standard_normal((size, size))).astype(np.float32)


def speed_rows(rng: np.random.Generator, sizes, repeats: int):
    xla = tf.function(
        lambda a, k: ops.simhash_compress(a, k, implementation="composite"),
        jit_compile=True,
        reduce_retracing=True,
    )
    rows = []
    for size in sizes:
        a = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
        for num_bits in sorted({size // 4, 1025}):

            def native():
                return ops.simhash_compress(a, num_bits, implementation="native")[1].numpy()

            def composite():
                return ops.simhash_compress(a, num_bits, implementation="composite")[1].numpy()

            t_native = best_time(native, repeats)
            t_comp = best_time(composite, repeats)
            t_xla = best_time(lambda: xla(a, num_bits)[1].numpy(), repeats, warmup=2)
            rows.append(
                [
                    size,
                    num_bits,
                    f"{t_native * 1e3:.1f}",
                    f"{t_comp * 1e3:.1f}",
                    f"{t_xla * 1e3:.1f}",
                    f"{t_comp / t_native:.2f}",
                    f"{t_xla / t_native:.2f}",
                ]
            )
    return rows


def error_rows(rng: np.random.Generator, size: int):
    rows = []
    for label, a in (
        ("N(0,1)", rng.standard_normal((size, size), dtype=np.float32)),
        ("rank32+noise", low_rank_plus_noise(rng, size)),
    ):
        for num_bits in (size // 4, size):
            errors = []
            for scale in ops.simhash.SCALES:
                signs, scales = ops.simhash_compress(a, num_bits, scale=scale)
                approx = ops.simhash_decompress(signs, scales, size).numpy()
                errors.append(np.linalg.norm(approx - a) / np.linalg.norm(a))
            rows.append([label, size, num_bits] + [f"{e:.3f}" for e in errors])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1024² only, fewer repeats")
    args = parser.parse_args()
    sizes = [1024] if args.quick else [1024, 4096]
    repeats = 3 if args.quick else 5
    print(
        f"TensorFlow {tf.__version__}, native: {ops.native_unavailable_reason()}, "
        f"intra-op threads: {tf.config.threading.get_intra_op_parallelism_threads() or 'all'}"
    )
    rng = np.random.default_rng(0)
    print("\nSimhashCompress, float32, best of", repeats)
    print_table(
        [
            "m=n",
            "num_bits",
            "native ms",
            "composite ms",
            "xla ms",
            "composite/native",
            "xla/native",
        ],
        speed_rows(rng, sizes, repeats),
    )
    print("\n‖Â − A‖/‖A‖, float32")
    print_table(
        ["matrix", "m=n", "num_bits", "least_squares", "norm (peer)"], error_rows(rng, 1024)
    )


if __name__ == "__main__":
    main()
