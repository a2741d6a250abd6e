"""Randomized truncated SVD built from GEMMs: the low-rank compression step for large matrices.

For A [m, n] and rank k, with a sketch of l = k + p columns:

    Y ← A·Ω                              Ω [n, l] Gaussian, regenerated from the seed
    repeat POWER_ITERATIONS times:       Y ← A·(Aᵀ·orth(Y))          subspace iteration
    Q = qr(Y)                            Householder (ops.householder_q): exactly orthonormal
    Z = Aᵀ·Q  [n, l]                     so QᵀA = Zᵀ
    ZᵀZ = W Λ Wᵀ (l × l eigh)            Rayleigh–Ritz: the top k of Λ are s_k²
    U_k = Q·W_k,  S_k V_kᵀ = (Z·W_k)ᵀ

Every product with A is a GEMM; but for one Householder QR of the final basis, the factorisations
are of l × l matrices. That is what makes it fast: an SVD or a QR of the tall m × l sketch at
every step is level-2-bound LAPACK, which is slow on few cores and collapses when its threads compete with TensorFlow's (profiled: a NumPy SVD of a
768 × 2048 sketch took 4 s with 2 threads beside TF, 0.4 s with one). The intermediate bases are
orthonormalised by a shifted Cholesky QR (a Gram GEMM, an l × l float64 Cholesky, a GEMM): the
subspace only needs to stay well conditioned between iterations. The final basis takes one
Householder QR, so the projection Q·Qᵀ·A is exact to rounding even for rank-deficient A; it
works on Y itself (a Cholesky QR before it would change nothing but the time), blocked and on
every CPU thread where the native op runs (TF's own QR is single-threaded).

Written once in TF ops: the TF path calls it directly (graph, tf.function, XLA), the NumPy path
runs it eagerly (or, inside a TF1 graph, in a private graph and session) — same numbers from both.
"""

from typing import Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.ops.householder_q import householder_q

POWER_ITERATIONS = 3
SKETCH_SEED = 0x5EED
# Relative diagonal shift of the Cholesky QR, in units of the working precision per row and
# column: keeps the Gram matrix of a nearly rank-deficient basis positive definite.
CHOLESKY_SHIFT_ULPS = 1.0
# Small k needs relatively more oversampling: at k = 64 of a flat spectrum, 16 columns left the
# error 1.05% above the optimum.
MIN_OVERSAMPLING = 32


def oversampling(k: int) -> int:
    """Extra sketch columns p for rank k: max(MIN_OVERSAMPLING, k / 4). With POWER_ITERATIONS
    the error stays within 1% of the exact truncated SVD's on the flattest spectra (N(0,1),
    bench/bench_low_rank_update.py and the tests); every extra column costs time in the l × l
    factorisations, which grow as l³ (k / 3 bought about a third less error for 13% more time
    at k = 1024)."""
    return max(MIN_OVERSAMPLING, k // 4)


def _compute_dtype(dtype: tf.DType) -> tf.DType:
    """float64 stays float64; every other float type computes in float32."""
    return tf.float64 if dtype == tf.float64 else tf.float32


def _cholesky_orthonormal(y: tf.Tensor) -> tf.Tensor:
    """A well-conditioned basis of span(y) [m, l] by a shifted Cholesky QR: y·R⁻¹, RᵀR = yᵀy + δI.

    The shift δ (a few ulps of the mean squared column norm per row and column) keeps the
    Cholesky defined when y is numerically rank deficient; the result is orthonormal to about δ,
    enough between power iterations. The Cholesky runs in float64 (the Gram matrix of an
    ill-conditioned y needs it); the inverse of its factor in y's dtype, since the shift bounds
    that factor's condition number by about √(l / (ulp·(m + l))), a few thousand in float32."""
    rows, cols = y.shape
    gram = tf.cast(tf.matmul(y, y, transpose_a=True), tf.float64)
    eps = float(np.finfo(y.dtype.as_numpy_dtype).eps)
    mean_square = tf.linalg.trace(gram) / cols
    shift = CHOLESKY_SHIFT_ULPS * eps * (rows + cols) * mean_square
    shift = tf.where(mean_square > 0, shift, tf.ones_like(shift))  # y = 0: any basis
    lower = tf.cast(tf.linalg.cholesky(gram + shift * tf.eye(cols, dtype=tf.float64)), y.dtype)
    inverse_upper = tf.linalg.triangular_solve(lower, tf.eye(cols, dtype=y.dtype), lower=True)
    return tf.matmul(y, inverse_upper, transpose_b=True)


def randomized_svd(
    a: tf.Tensor, k: int, seed: int = SKETCH_SEED, power_iterations: int = POWER_ITERATIONS
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(U_k [m, k], s_k [k], V_kᵀ [k, n]) of `a` [m, n], randomized (see the module docstring).

    Needs k + oversampling(k) ≤ min(m, n). float64 computes in float64, other floats in float32;
    the results have `a`'s dtype. Deterministic for a seed."""
    a = tf.convert_to_tensor(a)
    m, n = a.shape
    width = k + oversampling(k)
    if width > min(m, n):
        raise ValueError(
            f"randomized_svd: k + oversampling(k) = {width} must not exceed min(m, n) = "
            f"{min(m, n)} (use the exact SVD)"
        )
    x = tf.cast(a, _compute_dtype(a.dtype))
    sketch = tf.random.stateless_normal([n, width], seed=[seed, 0], dtype=x.dtype)
    y = tf.matmul(x, sketch)
    for _ in range(power_iterations):
        y = tf.matmul(x, tf.matmul(x, _cholesky_orthonormal(y), transpose_a=True))
    q = householder_q(y)  # exactly orthonormal: Q·Qᵀ·A is a projection
    z = tf.matmul(x, q, transpose_a=True)  # Aᵀ·Q, so QᵀA = Zᵀ
    # In the compute dtype: float64 doubled the eigh's time, the largest single cost at large l,
    # for the same error; the singular values come from the norms below, not from Λ.
    _, eigenvectors = tf.linalg.eigh(tf.matmul(z, z, transpose_a=True))  # ascending
    top = tf.cast(tf.reverse(eigenvectors[:, -k:], axis=[1]), x.dtype)
    u = tf.matmul(q, top)
    s_vt = tf.transpose(tf.matmul(z, top))  # rows s_i·v_iᵀ: norms from them, not from Λ
    s = tf.norm(s_vt, axis=1)
    vt = tf.math.divide_no_nan(s_vt, s[:, None])
    return tuple(tf.cast(t, a.dtype) for t in (u, s, vt))


def randomized_svd_numpy(
    a: np.ndarray, k: int, seed: int = SKETCH_SEED, power_iterations: int = POWER_ITERATIONS
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`randomized_svd` of a NumPy array, as NumPy arrays (the same TF computation).

    Runs eagerly where TF executes eagerly; inside a TF1 graph (or with eager execution
    disabled) it runs in a private graph and session, so the caller's graph never grows."""
    a = np.asarray(a)
    with tf.init_scope():
        if tf.executing_eagerly():
            outputs = _eager_randomized_svd(
                tf.constant(a), int(k), int(seed), int(power_iterations)
            )
            return tuple(t.numpy() for t in outputs)
    graph = tf.Graph()
    with graph.as_default():
        outputs = randomized_svd(tf.constant(a), k, seed, power_iterations)
    with tf.compat.v1.Session(graph=graph) as session:
        return tuple(session.run(outputs))


# Traced once per shape, dtype, rank, seed and iteration count (the Python ints are part of the
# signature): the NumPy path pays no per-op eager dispatch over the iterations.
_eager_randomized_svd = tf.function(randomized_svd)
