"""KMeansQuantize speed and error: the native kernel vs faiss.Kmeans (d=1, 20 iterations +
assignment) and scikit-learn KMeans(n_init=1) on the same N(0,1) float32 data, and vs its own
composite (eager and under XLA), all measured in this run. Prints times, ratios (baseline time /
native time) and relative Frobenius errors ‖Â − A‖/‖A‖.

faiss trains on a subsample of 256 points per centroid by default; it is run both that way and
on all points. Baselines whose package is missing are skipped.

    python bench/bench_kmeans.py [--quick] [--markdown FILE]
"""

import argparse
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import add_markdown_argument, append_markdown, best_time, print_table  # noqa: E402
from tf_matcomp import ops  # noqa: E402

FAISS_ITERATIONS = 20


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"({module} not installed: its baseline is skipped)")
        return None


def _error(a: np.ndarray, rebuilt: np.ndarray) -> float:
    return float(np.linalg.norm(rebuilt - a) / np.linalg.norm(a))


def _faiss_run(faiss, values: np.ndarray, k: int, subsample: bool):
    def run():
        kmeans = faiss.Kmeans(
            1,
            k,
            niter=FAISS_ITERATIONS,
            seed=1,
            verbose=False,
            **({} if subsample else {"max_points_per_centroid": 1 << 30}),
        )
        kmeans.train(values)
        _, codes = kmeans.index.search(values, 1)
        return kmeans.centroids[codes[:, 0], 0]

    return run


def _sklearn_run(cluster, values: np.ndarray, k: int):
    def run():
        kmeans = cluster.KMeans(n_clusters=k, n_init=1, random_state=0).fit(values)
        return kmeans.cluster_centers_[kmeans.labels_, 0]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1024² only, fewer repeats")
    add_markdown_argument(parser)
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    faiss, cluster = _optional("faiss"), _optional("sklearn.cluster")
    print(
        f"TensorFlow {tf.__version__}, native: {ops.native_unavailable_reason()}, "
        f"intra-op threads: {tf.config.threading.get_intra_op_parallelism_threads() or 'all'}"
    )
    rng = np.random.default_rng(0)
    xla = tf.function(
        lambda a, k: ops.kmeans_quantize(a, k, implementation="composite"),
        jit_compile=True,
        reduce_retracing=True,
    )
    baseline_rows, composite_rows = [], []
    for size in [1024] if args.quick else [1024, 4096]:
        a = rng.standard_normal((size, size), dtype=np.float32)
        tensor, values = tf.constant(a), a.reshape(-1, 1)
        for k in (16, 256):
            native = lambda: ops.kmeans_quantize(tensor, k, implementation="native")  # noqa
            t_native = best_time(native, repeats)
            e_native = _error(a, ops.kmeans_dequantize(*native()).numpy())
            baselines = []
            if faiss is not None:
                baselines += [("faiss (subsampled)", _faiss_run(faiss, values, k, True))]
                if size <= 1024 or not args.quick:
                    baselines += [("faiss (all points)", _faiss_run(faiss, values, k, False))]
            if cluster is not None and size <= 1024:  # minutes per run at 4096²
                baselines += [("sklearn n_init=1", _sklearn_run(cluster, values, k))]
            for label, run in baselines:
                t_base = best_time(run, repeats=1 if "sklearn" in label else 2, warmup=0)
                e_base = _error(a, run().reshape(a.shape))
                baseline_rows.append(
                    [
                        f"{size}²",
                        k,
                        label,
                        f"{t_base * 1e3:.1f}",
                        f"{e_base:.5f}",
                        f"{t_native * 1e3:.1f}",
                        f"{e_native:.5f}",
                        f"{t_base / t_native:.1f}x",
                    ]
                )
            composite = lambda: ops.kmeans_quantize(tensor, k, implementation="composite")  # noqa
            t_composite = best_time(composite, repeats)
            t_xla = best_time(lambda: xla(tensor, k), repeats, warmup=1)
            e_composite = _error(a, ops.kmeans_dequantize(*composite()).numpy())
            composite_rows.append(
                [
                    f"{size}²",
                    k,
                    f"{t_native * 1e3:.1f}",
                    f"{t_composite * 1e3:.1f}",
                    f"{t_xla * 1e3:.1f}",
                    f"{t_composite / t_native:.1f}x",
                    f"{t_xla / t_native:.1f}x",
                    f"{e_composite:.5f}",
                ]
            )
    baseline_header = [
        "A",
        "k",
        "baseline",
        "base ms",
        "base err",
        "native ms",
        "native err",
        "speedup",
    ]
    composite_header = [
        "A",
        "k",
        "native ms",
        "composite ms",
        "xla ms",
        "composite/native",
        "xla/native",
        "composite err",
    ]
    baseline_caption = (
        "native KMeansQuantize (block_size 1) vs baselines; speedup = baseline / native"
    )
    composite_caption = "native vs its composite (eager) and the composite under XLA"
    print(f"\n{baseline_caption}")
    print_table(baseline_header, baseline_rows)
    print(f"\n{composite_caption}")
    print_table(composite_header, composite_rows)
    append_markdown(
        args.markdown,
        "KMeansQuantize (float32 N(0,1), CPU)",
        [
            (baseline_caption, baseline_header, baseline_rows),
            (composite_caption, composite_header, composite_rows),
        ],
    )


if __name__ == "__main__":
    main()
