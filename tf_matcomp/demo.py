"""The main job (for now): compress a weight-sized matrix and blend it the way training does.

Builds a 1024×1024 matrix with a decaying spectrum (like a trained layer's weight), factors it by
truncated SVD into B [m,k] and C [k,n], then walks alpha from 1 to 0 through
`tf_matcomp.ops.low_rank_blend` with each implementation, reporting the reconstruction error
against a NumPy oracle, the compression ratio and which implementation ran.

    python -m tf_matcomp.demo [--size 1024] [--rank 64]
"""
import argparse
import time

import numpy as np
import tensorflow as tf

from tf_matcomp import ops


def _weight_like_matrix(size: int, rng: np.random.Generator) -> np.ndarray:
    """A matrix whose singular values decay like a trained layer's (power law + noise)."""
    u, _ = np.linalg.qr(rng.standard_normal((size, size)))
    v, _ = np.linalg.qr(rng.standard_normal((size, size)))
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(size))
    return ((u * spectrum) @ v.T).astype(np.float32)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="rows and columns of the weight")
    parser.add_argument("--rank", type=int, default=64, help="k, the inner size of B·C")
    args = parser.parse_args(argv)
    if args.size < 1 or not 1 <= args.rank <= args.size:
        parser.error("need size >= 1 and 1 <= rank <= size")

    rng = np.random.default_rng(0)
    a = _weight_like_matrix(args.size, rng)
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    root = np.sqrt(s[:args.rank])
    b = (u[:, :args.rank] * root).astype(np.float32)
    c = (root[:, None] * vt[:args.rank]).astype(np.float32)
    print(f"TensorFlow {tf.__version__}; native ops: {ops.native_unavailable_reason()}")
    print(f"weight {args.size}x{args.size}, factors k={args.rank}: compression ratio "
          f"{a.size / (b.size + c.size):.1f}x, low-rank error "
          f"{np.linalg.norm(b @ c - a) / np.linalg.norm(a):.4f}")
    implementations = ["native", "composite"] if ops.native_available() else ["composite"]
    print(f"{'alpha':>6} " + " ".join(f"{name + ' err':>14} {name + ' ms':>12}"
                                        for name in implementations))
    for alpha in (1.0, 0.75, 0.5, 0.25, 0.0):
        expected = alpha * a + (1 - alpha) * (b @ c)
        cells = []
        for name in implementations:
            ops.low_rank_blend(a, b, c, alpha, implementation=name)  # warm-up
            start = time.perf_counter()
            w = ops.low_rank_blend(a, b, c, alpha, implementation=name).numpy()
            elapsed = time.perf_counter() - start
            error = np.linalg.norm(w - expected) / np.linalg.norm(expected)
            cells.append(f"{error:14.2e} {elapsed * 1e3:12.2f}")
        print(f"{alpha:6.2f} " + " ".join(cells))


if __name__ == "__main__":
    main()
