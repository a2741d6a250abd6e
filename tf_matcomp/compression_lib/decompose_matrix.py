"""graph_compression's `decompose_matrix`: the simhash factorisation A ≈ R · S · D, unpacked.

Built on tf_matcomp's simhash (`tf_matcomp.ops`, and the C++ core `tf_matcomp._core` for NumPy)
with the peer's norm-matching scale: R [m, k] the projection regenerated from `seed`, S = sign(Rᵀ
A) [k, n] with sign(0) = +1, D = diag(‖A_j‖ / ‖(R S)_j‖) [n, n]. R comes from tf_matcomp's
counter-based generator (the same for a seed in NumPy, TF and XLA), not from reseeding NumPy's
global generator, so its values differ from the peer's.
"""

from typing import Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import _core_loader, ops
from tf_matcomp.ops.composites import simhash as simhash_composite

_SCALE = "norm"  # the peer's column scale


def np_simhash_decompose(
    matrix: np.ndarray, inner_dimension: int, seed: int = 0
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R [m, k], S [k, n] of ±1, D [n, n] diagonal) of `matrix` [m, n] with k =
    `inner_dimension`, as NumPy arrays (float64 stays float64, anything else float32)."""
    a = np.asarray(matrix)
    a = a if a.dtype == np.float64 else a.astype(np.float32)
    core = _core_loader.core_or_warn("decompose_matrix.np_simhash_decompose")
    if core is None:
        return tuple(
            np.asarray(f) for f in tf_simhash_decompose(tf.constant(a), inner_dimension, seed)
        )
    signs, scales = core.simhash_compress(a, inner_dimension, seed=seed, scale=_SCALE)
    r = core.simhash_projection(a.shape[0], inner_dimension, seed=seed, dtype=a.dtype)
    bits = np.unpackbits(signs, axis=1, bitorder="little")[:, : a.shape[1]]
    s = np.where(bits == 1, 1, -1).astype(a.dtype)
    return r, s, np.diag(scales)


def tf_simhash_decompose(matrix, inner_dimension: int, seed: int = 0):
    """(R, S, D) of `matrix` [m, n] in TF ops, as `np_simhash_decompose`."""
    a = tf.convert_to_tensor(matrix)
    signs, scales = ops.simhash_compress(a, inner_dimension, seed=seed, scale=_SCALE)
    r = ops.simhash_projection(a.shape[0], inner_dimension, seed=seed, dtype=a.dtype)
    s = simhash_composite.unpack_signs(signs, a.shape[1], a.dtype)
    return r, s, tf.linalg.diag(scales)
