"""`kmeans_quantize` / `kmeans_dequantize`: k-means weight quantization, native or composite."""

from typing import Optional, Tuple

import tensorflow as tf

from tf_matcomp import constants
from tf_matcomp.ops import _dispatch, _validation
from tf_matcomp.ops.composites import kmeans as composite

NATIVE_OP_NAME = "Matcomp>KMeansQuantize"
# Limits shared with the kernel: cc/core/constants.h.
MAX_CLUSTERS = constants.MAX_CLUSTERS
MAX_UINT8_CLUSTERS = constants.MAX_UINT8_CLUSTERS
MAX_CODEBOOK_ELEMENTS = constants.MAX_CODEBOOK_ELEMENTS
MAX_OPTIMAL_CLUSTERS = constants.MAX_OPTIMAL_CLUSTERS
METHODS = ("lloyd", "optimal")
DEFAULT_MAX_ITERATIONS = constants.DEFAULT_MAX_ITERATIONS
_INPUT_DTYPES = (tf.float32, tf.float64)

tf.no_gradient(NATIVE_OP_NAME)  # cluster assignment is piecewise constant: no gradient


def code_dtype_for(num_clusters: int) -> tf.DType:
    """uint8 codes when num_clusters <= 256, else int32."""
    return tf.uint8 if num_clusters <= MAX_UINT8_CLUSTERS else tf.int32


def kmeans_quantize(
    a,
    num_clusters: int,
    block_size: int = 1,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    seed: int = 0,
    snap_zero: bool = False,
    method: str = "lloyd",
    implementation: str = "auto",
    name: Optional[str] = None,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """k-means quantization of `a` viewed as m·n/block_size blocks of block_size values.

    Algorithm (native kernel):
      * block_size 1: the values are reduced once to sorted weighted atoms (their distinct
        values; above 65,536 values a 32,768-bin histogram with per-bin counts and sums, unless
        its bins are too coarse for num_clusters levels). Lloyd's iterations run on the atoms
        with prefix sums and binary-searched boundaries (O(k log atoms) per iteration, never
        O(N·k)), starting from the optimal clustering of a 1,024-run coarsening when
        num_clusters <= 256 and from equal-count quantiles otherwise. `method="optimal"`
        instead computes the exact optimal 1-D clustering of the atoms by dynamic programming
        (num_clusters <= 256). Values are then coded by binary search over the boundaries.
        The codebook is sorted ascending; `seed` is not used.
      * block_size > 1: k-means++ initialisation seeded by `seed`, then Lloyd's iterations with
        multi-threaded assignment; empty clusters restart on the farthest blocks.
      Lloyd stops after `max_iterations` or once no code changes. The result depends only on the
      input and the arguments, never on the thread count. The composite (used under
      `jit_compile=True`) follows the same rules with the differences listed in
      `tf_matcomp.ops.composites.kmeans`.

    Padding: when `a` has fewer distinct blocks d than num_clusters (d = 0 for an empty `a`),
    codebook rows 0..d-1 are the distinct blocks, the remaining rows are zero, and no code
    refers to them.

    Args:
      a: [m, n] float32 or float64, finite with |values| <= 1e150, with n divisible by
        block_size.
      num_clusters: codebook rows, in [1, 65536]; num_clusters · block_size <= 2**24.
      block_size: values per block (>= 1).
      max_iterations: most Lloyd iterations (>= 1).
      seed: k-means++ seed, in [0, 2**63 - 1].
      snap_zero: set the centroid nearest zero to exactly zero (as the peer graph_compression
        does) and code against the snapped codebook.
      method: "lloyd" or "optimal" (block_size 1 and num_clusters <= 256; native only, the
        composite runs Lloyd).
      implementation: "native", "composite" or "auto" (see `_dispatch`).
      name: optional name scope.

    Returns:
      (codebook [num_clusters, block_size] of a's dtype, codes [m, n / block_size]); codes are
      uint8 when num_clusters <= 256, else int32.

    Raises:
      ValueError: an argument breaks the rules above (known before running).
      tf.errors.InvalidArgumentError: the same found at run time, or values of `a` that are
        not finite or exceed 1e150 in magnitude.
    """
    _dispatch.check_implementation(implementation)
    num_clusters = _validation.require_int_in_range(num_clusters, "num_clusters", 1, MAX_CLUSTERS)
    block_size = _validation.require_int_in_range(block_size, "block_size", 1)
    max_iterations = _validation.require_int_in_range(max_iterations, "max_iterations", 1)
    seed = _validation.require_int_in_range(seed, "seed", 0, constants.MAX_SEED)
    if not isinstance(snap_zero, bool):
        raise ValueError(f"`snap_zero` must be a bool, got {snap_zero!r}")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    if num_clusters * block_size > MAX_CODEBOOK_ELEMENTS:
        raise ValueError(
            f"`num_clusters` * `block_size` must be at most {MAX_CODEBOOK_ELEMENTS} "
            f"(the codebook size), got {num_clusters} * {block_size}"
        )
    if method == "optimal" and (block_size != 1 or num_clusters > MAX_OPTIMAL_CLUSTERS):
        raise ValueError(
            f'`method` "optimal" needs `block_size` 1 and `num_clusters` <= '
            f"{MAX_OPTIMAL_CLUSTERS}, got {block_size} and {num_clusters}"
        )
    with tf.name_scope(name or "kmeans_quantize"):
        a = _validation.as_float_tensor(a, "a")
        if a.dtype not in _INPUT_DTYPES:
            raise ValueError(f"`a` must have dtype float32 or float64, got {a.dtype.name}")
        _validation.require_rank(a, 2, "a")
        columns = a.shape[1] if a.shape.rank == 2 else None
        if columns is not None and columns % block_size:
            raise ValueError(
                f"`block_size` ({block_size}) must divide the number of columns of `a` ({columns})"
            )
        code_dtype = code_dtype_for(num_clusters)

        def native(library):
            codebook, codes = library.matcomp_k_means_quantize(
                a,
                num_clusters=num_clusters,
                block_size=block_size,
                max_iterations=max_iterations,
                seed=seed,
                snap_zero=snap_zero,
                method=method,
                code_dtype=code_dtype,
            )
            return codebook, codes

        return _dispatch.dispatch(
            "kmeans_quantize",
            implementation,
            native,
            lambda: composite.kmeans_quantize(
                a, num_clusters, block_size, max_iterations, seed, snap_zero, code_dtype
            ),
        )


def kmeans_dequantize(codebook, codes, name: Optional[str] = None) -> tf.Tensor:
    """Rebuilds the [m, n] matrix from `kmeans_quantize`'s output: block j of row i is
    codebook[codes[i, j]]. Differentiable with respect to `codebook`.

    Args:
      codebook: [num_clusters, block_size] floating tensor.
      codes: [m, n / block_size] integer tensor (uint8, int32 or int64) of codebook rows.
      name: optional name scope.

    Raises:
      ValueError: a rank or dtype is wrong, or `codebook` has no rows for existing codes. A code outside [0, num_clusters) raises
        tf.errors.InvalidArgumentError on CPU at run time.
    """
    with tf.name_scope(name or "kmeans_dequantize"):
        codebook = _validation.as_float_tensor(codebook, "codebook")
        codes = _validation.as_tensor(codes, "codes")
        if codes.dtype not in (tf.uint8, tf.int32, tf.int64):
            raise ValueError(
                f"`codes` must have dtype uint8, int32 or int64, got {codes.dtype.name}"
            )
        _validation.require_rank(codebook, 2, "codebook")
        _validation.require_rank(codes, 2, "codes")
        if codebook.shape[0] == 0 and codes.shape.num_elements():
            # Known before running, so also under XLA, whose gather from no rows is undefined.
            raise ValueError(
                f"`codebook` has no rows, so none of the {codes.shape.num_elements()} `codes` "
                "can index it"
            )
        if codes.dtype == tf.uint8:  # gather takes int32/int64 indices
            codes = tf.cast(codes, tf.int32)
        blocks = tf.gather(codebook, codes)  # [m, n / block_size, block_size]
        shape = tf.shape(blocks)
        matrix = tf.reshape(blocks, [shape[0], shape[1] * shape[2]])
        if blocks.shape.rank == 3:  # keep what is statically known
            blocks_per_row, block_size = blocks.shape[1], blocks.shape[2]
            matrix.set_shape(
                [
                    blocks.shape[0],
                    None if None in (blocks_per_row, block_size) else blocks_per_row * block_size,
                ]
            )
        return matrix
