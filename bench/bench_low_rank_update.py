"""Low-rank update speed (the compression step of option 1): the TF path (update_option 0,
`tpu_matrix_compressor`, eager and in a tf.function), the NumPy path (update_option 1,
`static_matrix_compressor`) and scikit-learn's `randomized_svd`, all measured in this run, at
k = n/4 (rank=400). Error: ‖A − B·C‖_F over the exact truncated SVD's (singular values from
LAPACK in float64, the oracle), on N(0,1) and on a low-rank-plus-noise matrix.

    python bench/bench_low_rank_update.py [--quick] [--markdown FILE]

scikit-learn runs in this process beside TensorFlow, as a compression update does in training.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import append_markdown, best_time, parse_arguments, print_table  # noqa: E402
from tf_matcomp.compressors import LowRankDecompMatrixCompressor, compressor_hparams  # noqa: E402

RANK_HPARAM = 400  # k = n / 4


def _matrices(size: int, rng):
    gaussian = rng.standard_normal((size, size), dtype=np.float32)
    signal = rng.standard_normal((size, 64), dtype=np.float32) @ rng.standard_normal(
        (64, size), dtype=np.float32
    )
    noisy = signal + 0.5 * rng.standard_normal((size, size), dtype=np.float32)
    return {"N(0,1)": gaussian, "low-rank+noise": noisy}


def _optimal_error(a: np.ndarray, k: int) -> float:
    s = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    return float(np.sqrt(np.sum(s[k:] ** 2)))


def main() -> None:
    args = parse_arguments(__doc__, "2048² only, fewer repeats")
    from sklearn.utils.extmath import randomized_svd  # the baseline

    sizes = [2048] if args.quick else [2048, 4096]
    spec = compressor_hparams()
    spec.set_hparam("rank", RANK_HPARAM)
    compressor = LowRankDecompMatrixCompressor(spec)
    tf_function = tf.function(compressor.tpu_matrix_compressor)
    rng = np.random.default_rng(0)
    header = ["n", "k", "matrix", "path", "seconds", "speed-up vs sklearn", "error vs optimal"]
    rows = []
    for size in sizes:
        repeats = 2 if args.quick or size > 2048 else 3
        k = compressor.rank_for((size, size))
        for name, a in _matrices(size, rng).items():
            tensor = tf.constant(a)
            paths = {
                "scikit-learn randomized_svd": lambda: randomized_svd(a, k, random_state=0),
                "NumPy path (update_option 1)": lambda: compressor.static_matrix_compressor(a),
                "TF path eager (update_option 0)": lambda: compressor.tpu_matrix_compressor(tensor),
                "TF path tf.function": lambda: tf_function(tensor),
            }
            optimal = _optimal_error(a, k)
            baseline = None
            for path, run in paths.items():
                seconds = best_time(run, repeats)
                result = [np.asarray(x, np.float64) for x in run()]
                approx = (result[0] * result[1]) @ result[2] if len(result) == 3 else None
                approx = result[0] @ result[1] if approx is None else approx
                error = np.linalg.norm(a - approx) / optimal - 1
                baseline = seconds if baseline is None else baseline
                rows.append(
                    [
                        size,
                        k,
                        name,
                        path,
                        f"{seconds:.3f}",
                        f"{baseline / seconds:.2f}",
                        f"{100 * error:+.2f}%",
                    ]
                )
    print(f"TensorFlow {tf.__version__}, numpy {np.__version__}")
    print_table(header, rows)
    append_markdown(
        args.markdown,
        "Low-rank update (option 1's compression step)",
        [
            (
                "k = n/4; best of 2–3 runs; speed-up = scikit-learn's seconds / the path's, same run; "
                "error = ‖A − B·C‖_F over the exact truncated SVD's, minus 1. "
                "`python bench/bench_low_rank_update.py`",
                header,
                rows,
            )
        ],
    )


if __name__ == "__main__":
    main()
