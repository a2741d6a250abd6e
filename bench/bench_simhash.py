"""Simhash speed and reconstruction error, both projections, all measured in this run.

Speed: SimhashCompress and SimhashDecompress at 1024² and 4096², num_bits m/4 and 1025, float32:
the native kernel and the composite (eager, TF's own kernels, and under XLA, `jit_compile=True`)
for the Gaussian projection (the default) and the structured one (projection="hadamard"); for
the Gaussian compression also the native kernel's first call (the later calls of a kernel reuse
the projection's Gram matrix RᵀR, as a layer's updates after its first do). The
baseline of each row is the Gaussian XLA composite of the same op and shape: a ratio is baseline
time over the row's time (> 1: faster than the baseline). Error: ‖Â − A‖/‖A‖ at num_bits m/4 and
m on N(0, 1) and on a rank-32-plus-10%-noise matrix, least-squares vs norm (peer) scaling for the
Gaussian projection and least squares for the structured one, with its ratio to the Gaussian's.

    python bench/bench_simhash.py [--quick] [--markdown FILE]
"""

import argparse
import itertools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import add_markdown_argument, append_markdown, best_time, print_table  # noqa: E402
from tf_matcomp import ops  # noqa: E402

SPEED_HEADER = ["op", "m=n", "num_bits", "projection", "implementation", "ms", "vs gaussian xla"]
ERROR_HEADER = [
    "matrix",
    "m=n",
    "num_bits",
    "gaussian least_squares",
    "gaussian norm (peer)",
    "hadamard least_squares",
    "hadamard / gaussian",
]


def low_rank_plus_noise(
    rng: np.random.Generator, size: int, rank: int = 32, noise: float = 0.1
) -> np.ndarray:
    """U·V/√rank (entries ~ unit variance) plus `noise`·N(0, 1)."""
    low_rank = rng.standard_normal((size, rank)) @ rng.standard_normal((rank, size))
    return (low_rank / np.sqrt(rank) + noise * rng.standard_normal((size, size))).astype(np.float32)


def _variants(size: int, num_bits: int):
    """(op, projection, implementation, fn of (a, signs, scales)) for every timed variant."""
    xla_compress = {
        p: tf.function(
            lambda a, p=p: ops.simhash_compress(
                a, num_bits, implementation="composite", projection=p
            ),
            jit_compile=True,
        )
        for p in ops.simhash.PROJECTIONS
    }
    xla_decompress = {
        p: tf.function(
            lambda s, d, p=p: ops.simhash_decompress(
                s, d, size, implementation="composite", projection=p
            ),
            jit_compile=True,
        )
        for p in ops.simhash.PROJECTIONS
    }
    for projection in ops.simhash.PROJECTIONS:
        for implementation in ("native", "composite", "xla"):

            def compress(a, signs, scales, projection=projection, implementation=implementation):
                if implementation == "xla":
                    return xla_compress[projection](a)[1].numpy()
                return ops.simhash_compress(
                    a, num_bits, implementation=implementation, projection=projection
                )[1].numpy()

            def decompress(a, signs, scales, projection=projection, implementation=implementation):
                if implementation == "xla":
                    return xla_decompress[projection](signs, scales).numpy()
                return ops.simhash_decompress(
                    signs, scales, size, implementation=implementation, projection=projection
                ).numpy()

            yield "compress", projection, implementation, compress
            yield "decompress", projection, implementation, decompress
    # A kernel keeps the Gaussian projection's Gram matrix between its calls (one seed and bit
    # count per kernel): a new seed per call times a kernel's first compression, as a layer's
    # first update pays it.
    fresh_seeds = itertools.count(1)

    def first_compress(a, signs, scales):
        return ops.simhash_compress(a, num_bits, seed=next(fresh_seeds), implementation="native")[
            1
        ].numpy()

    yield "compress", "gaussian", "native, first call", first_compress


def speed_rows(rng: np.random.Generator, sizes, repeats: int):
    rows = []
    for size in sizes:
        a = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
        for num_bits in sorted({size // 4, 1025}):
            factors = {
                p: ops.simhash_compress(a, num_bits, projection=p) for p in ops.simhash.PROJECTIONS
            }
            times = {}
            for op, projection, implementation, fn in _variants(size, num_bits):
                signs, scales = factors[projection]
                times[op, projection, implementation] = best_time(
                    lambda fn=fn, signs=signs, scales=scales: fn(a, signs, scales),
                    repeats,
                    warmup=2,
                )
            for (op, projection, implementation), seconds in sorted(times.items()):
                baseline = times[op, "gaussian", "xla"]
                rows.append(
                    [
                        op,
                        size,
                        num_bits,
                        projection,
                        implementation,
                        f"{seconds * 1e3:.1f}",
                        f"{baseline / seconds:.2f}",
                    ]
                )
    return rows


def _error(a: np.ndarray, num_bits: int, scale: str, projection: str) -> float:
    signs, scales = ops.simhash_compress(a, num_bits, scale=scale, projection=projection)
    approx = ops.simhash_decompress(signs, scales, a.shape[0], projection=projection).numpy()
    return float(np.linalg.norm(approx - a) / np.linalg.norm(a))


def error_rows(rng: np.random.Generator, size: int):
    rows = []
    for label, a in (
        ("N(0,1)", rng.standard_normal((size, size), dtype=np.float32)),
        ("rank32+noise", low_rank_plus_noise(rng, size)),
    ):
        for num_bits in (size // 4, size):
            gaussian = _error(a, num_bits, "least_squares", "gaussian")
            norm = _error(a, num_bits, "norm", "gaussian")
            hadamard = _error(a, num_bits, "least_squares", "hadamard")
            rows.append(
                [
                    label,
                    size,
                    num_bits,
                    f"{gaussian:.3f}",
                    f"{norm:.3f}",
                    f"{hadamard:.3f}",
                    f"{hadamard / gaussian:.3f}",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1024² only, fewer repeats")
    add_markdown_argument(parser)
    args = parser.parse_args()
    sizes = [1024] if args.quick else [1024, 4096]
    repeats = 3 if args.quick else 5
    setup = (
        f"TensorFlow {tf.__version__}, native: {ops.native_unavailable_reason()}, "
        f"intra-op threads: {tf.config.threading.get_intra_op_parallelism_threads() or 'all'}, "
        f"float32, best of {repeats}"
    )
    print(setup)
    rng = np.random.default_rng(0)
    speed = speed_rows(rng, sizes, repeats)
    print("\nSimhash speed (ratio: the Gaussian XLA composite's time over the row's)")
    print_table(SPEED_HEADER, speed)
    errors = error_rows(rng, 1024)
    print("\n‖Â − A‖/‖A‖")
    print_table(ERROR_HEADER, errors)
    append_markdown(
        args.markdown,
        "Simhash (bench/bench_simhash.py)",
        [
            (
                setup + ". Speed: `vs gaussian xla` is the Gaussian XLA composite's time for "
                "the same op and shape over the row's time (> 1: faster).",
                SPEED_HEADER,
                speed,
            ),
            (
                "Reconstruction error ‖Â − A‖/‖A‖ (`hadamard / gaussian`: the structured "
                "projection's error over the Gaussian's, least squares both).",
                ERROR_HEADER,
                errors,
            ),
        ],
    )


if __name__ == "__main__":
    main()
