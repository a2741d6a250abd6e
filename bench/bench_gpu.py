"""GPU speed of every native kernel against its composite compiled by XLA on the GPU, and of
LowRankBlend against a bare tf.matmul(B, C); all measured in this run, printed as one table.

    python bench/bench_gpu.py [--quick]      # needs a GPU and the library built with CUDA

Exits 1 with "no GPU" when none is visible (or the library lacks GPU kernels). Times are
best-of-N after warm-up, each call followed by a device sync. float32 runs with TF's default
TensorFloat-32 policy on both sides.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import add_markdown_argument, append_markdown, best_time, print_table  # noqa: E402
from tf_matcomp import ops  # noqa: E402
from tf_matcomp.ops import _loader  # noqa: E402


def timed(fn, repeats, warmup=2):
    """Milliseconds of one call of fn, device work included."""

    def run():
        fn()
        tf.test.experimental.sync_devices()

    return 1e3 * best_time(run, repeats=repeats, warmup=warmup)


def xla(fn):
    return tf.function(fn, jit_compile=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    add_markdown_argument(parser)
    args = parser.parse_args()
    if not tf.config.list_logical_devices("GPU"):
        print("bench_gpu: no GPU visible: nothing to measure", file=sys.stderr)
        return 1
    if not (_loader.native_available() and _loader.native_gpu_kernels()):
        print(
            f"bench_gpu: no GPU kernels in the op library ({_loader.native_unavailable_reason()};"
            f" build with TF_MATCOMP_CUDA=1)",
            file=sys.stderr,
        )
        return 1
    sizes = [1024] if args.quick else [4096, 8192]
    repeats = 3 if args.quick else 10
    gpu = tf.config.list_logical_devices("GPU")[0]
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    print(
        f"TensorFlow {tf.__version__} on {details.get('device_name', gpu.name)}; "
        f"TF32 {'on' if tf.config.experimental.tensor_float_32_execution_enabled() else 'off'}"
    )
    rng = np.random.default_rng(0)
    header = [
        "op",
        "shape",
        "native ms",
        "XLA composite ms",
        "vs XLA",
        "baseline ms",
        "vs baseline",
        "target",
    ]
    rows = []

    def row(name, shape, native, composite, baseline=None, target=""):
        rows.append(
            [
                name,
                shape,
                f"{native:.3f}",
                f"{composite:.3f}",
                f"{native / composite:.2f}x",
                "" if baseline is None else f"{baseline:.3f}",
                "" if baseline is None else f"{native / baseline:.2f}x",
                target,
            ]
        )

    with tf.device(gpu.name):
        for size in sizes:
            a = tf.constant(rng.standard_normal((size, size)), tf.float32)
            for k in (64, 256, 1024):
                b = tf.constant(rng.standard_normal((size, k)), tf.float32)
                c = tf.constant(rng.standard_normal((k, size)), tf.float32)
                composite = xla(
                    lambda a, b, c: ops.low_rank_blend(a, b, c, 0.3, implementation="composite")
                )
                row(
                    "LowRankBlend",
                    f"{size}² k={k}",
                    timed(
                        lambda: ops.low_rank_blend(a, b, c, 0.3, implementation="native"), repeats
                    ),
                    timed(lambda: composite(a, b, c), repeats),
                    timed(lambda: tf.matmul(b, c), repeats),
                    "<= 1.1x matmul",
                )
            bits = 1025
            composite = xla(lambda a: ops.simhash_compress(a, bits, implementation="composite"))
            r = tf.constant(rng.standard_normal((size, bits)), tf.float32)
            row(
                "SimhashCompress",
                f"{size}² bits={bits}",
                timed(lambda: ops.simhash_compress(a, bits, implementation="native"), repeats),
                timed(lambda: composite(a), repeats),
                timed(lambda: tf.matmul(r, a, transpose_a=True), repeats),
                "<= 1.2x GEMM",
            )
            signs, scales = ops.simhash_compress(a, bits, implementation="native")
            composite = xla(
                lambda s, d: ops.simhash_decompress(s, d, size, implementation="composite")
            )
            row(
                "SimhashDecompress",
                f"{size}² bits={bits}",
                timed(
                    lambda: ops.simhash_decompress(signs, scales, size, implementation="native"),
                    repeats,
                ),
                timed(lambda: composite(signs, scales), repeats),
            )
            composite = xla(lambda: ops.simhash_projection(size, bits, implementation="composite"))
            row(
                "SimhashProjection",
                f"{size}x{bits}",
                timed(lambda: ops.simhash_projection(size, bits, implementation="native"), repeats),
                timed(composite, repeats),
            )
            composite = xla(lambda a: ops.kmeans_quantize(a, 16, implementation="composite"))
            row(
                "KMeansQuantize",
                f"{size}² k=16",
                timed(lambda: ops.kmeans_quantize(a, 16, implementation="native"), repeats),
                timed(lambda: composite(a), max(1, repeats // 3)),
                target="<= 2 ms at 4096²" if size == 4096 else "",
            )
            vector = dict(block_size=4, max_iterations=5)
            composite = xla(
                lambda a: ops.kmeans_quantize(a, 256, **vector, implementation="composite")
            )
            row(
                "KMeansQuantize",
                f"{size}² k=256 block=4",
                timed(
                    lambda: ops.kmeans_quantize(a, 256, **vector, implementation="native"), repeats
                ),
                timed(lambda: composite(a), max(1, repeats // 3)),
            )
    print_table(header, rows)
    append_markdown(
        args.markdown,
        f"GPU kernels (bench/bench_gpu.py, {details.get('device_name', gpu.name)})",
        [("", header, rows)],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
