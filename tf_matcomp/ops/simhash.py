"""`simhash_compress` / `simhash_decompress`: sign-of-random-projection compression, native or
composite, and `simhash_projection`, the projection both regenerate.

Formulas, for A [m, n] and k = num_bits:
  * R [m, k] = `simhash_projection(m, k, seed, projection=...)`, never stored: "gaussian" (the
    default, the generator below) or "hadamard", the structured ±1 projection of
    cc/core/hadamard.h: R[i, qL + t] = σ_q(i)·(−1)^popcount(i & t) with L the smallest power of
    two >= m and σ_q(i) = ±1 from the top bit of mix(key + (i·2³² + q)·G). Its Rᵀ·A is a fold
    and a fast Walsh–Hadamard transform (no GEMM), its columns within a block are orthogonal
    when m is a power of two, and its error on incoherent matrices is at most the Gaussian's
    (bench/bench_simhash.py measures both).
  * S = sign(Rᵀ A) [k, n], sign(0) = +1, packed into `signs` uint8 [k, ceil(n/8)]: column j of S
    is bit j % 8 of byte j // 8 (least significant bit first, as
    `numpy.packbits(..., bitorder="little")`), bit 1 meaning +1; padding bits are 0 when
    written and ignored when read.
  * scales D [n]: "least_squares" (default) D_j = ⟨A_j, (R S)_j⟩ / ‖(R S)_j‖², the best scale for
    column j, so the result is never worse than the zero matrix; "norm" D_j = ‖A_j‖ / ‖(R S)_j‖
    (the peer graph_compression's norm matching, ≈ 1.12·‖A‖ error at k = m/4). D_j = 0 when
    (R S)_j = 0 (m = 0).
  * Â = R · S · diag(D) [m, n].

Generator: R[row, col] = K · (1/√43690) with K = (sum of the 8 bytes of h) − 1020,
h = mix(key + (row·2³² + col)·0x9E3779B97F4A7C15) and key = mix(seed + 0x9E3779B97F4A7C15), where
mix is the SplitMix64 finalizer and arithmetic wraps modulo 2⁶⁴ (cc/core/counter_rng.h). K is a sum of 8 iid uniform integers on {0..255},
centred: mean exactly 0, variance exactly 43690, so R has mean 0 and variance 1 (up to the
rounding of the scale to the dtype), excess kurtosis −0.15 and |R| ≤ 4.88, an approximation of
N(0, 1). Integer operations and one correctly rounded multiply only, so the native kernel, the
composite (also under XLA) and NumPy give bit-identical R for a given dtype and seed.

Error ‖Â − A‖/‖A‖ on N(0, 1) and on a low-rank-plus-noise matrix, both projections, and the
speed of each: bench/bench_simhash.py (each column is compressed on its own by a (nearly)
rotation-invariant projection, so only the column's direction relative to R matters, not the
rank of A).
"""

from typing import Optional, Tuple

import tensorflow as tf

from tf_matcomp import constants
from tf_matcomp.ops import _dispatch, _validation
from tf_matcomp.ops.composites import simhash as composite

COMPRESS_OP_NAME = "Matcomp>SimhashCompress"
DECOMPRESS_OP_NAME = "Matcomp>SimhashDecompress"
PROJECTION_OP_NAME = "Matcomp>SimhashProjection"
SCALES = ("least_squares", "norm")
PROJECTIONS = ("gaussian", "hadamard")
# Limits shared with the kernels: cc/core/constants.h (per-thread scratch is num_bits × tile
# width).
MAX_INDEX = constants.MAX_PROJECTION_INDEX
MAX_BUFFER_ELEMENTS = constants.MAX_SIMHASH_BUFFER_ELEMENTS
MAX_TILE_WIDTH = constants.MAX_SIMHASH_TILE_WIDTH
MAX_TILE_SCRATCH = constants.MAX_SIMHASH_TILE_SCRATCH
_DTYPES = _validation.SINGLE_OR_DOUBLE

tf.no_gradient(COMPRESS_OP_NAME)  # signs are piecewise constant, and scales follow from them
tf.no_gradient(PROJECTION_OP_NAME)  # no inputs


def _check_sizes(
    rows: Optional[int], cols: Optional[int], num_bits: Optional[int], rows_name: str
) -> None:
    """The kernels' size rules (cc/core/simhash.cc) on whatever is statically known."""
    if rows is not None and rows > MAX_INDEX:
        raise ValueError(f"{rows_name} must be at most {MAX_INDEX}, got {rows}")
    if rows is not None and num_bits is not None and rows * num_bits > MAX_BUFFER_ELEMENTS:
        raise ValueError(
            f"{rows_name} * `num_bits` (the projection R) must be at most "
            f"{MAX_BUFFER_ELEMENTS} elements, got {rows} * {num_bits}"
        )
    if rows is not None and cols is not None and rows * cols > MAX_BUFFER_ELEMENTS:
        raise ValueError(
            f"{rows_name} * columns must be at most {MAX_BUFFER_ELEMENTS} "
            f"elements, got {rows} * {cols}"
        )
    if (
        cols is not None
        and num_bits is not None
        and num_bits * min(cols, MAX_TILE_WIDTH) > MAX_TILE_SCRATCH
    ):
        raise ValueError(
            f"`num_bits` * min(columns, {MAX_TILE_WIDTH}) (per-thread scratch) "
            f"must be at most {MAX_TILE_SCRATCH}, got {num_bits} * "
            f"{min(cols, MAX_TILE_WIDTH)}"
        )
    if (
        cols is not None
        and num_bits is not None
        and num_bits * composite.packed_width(cols) > MAX_BUFFER_ELEMENTS
    ):
        raise ValueError(
            f"`num_bits` * ceil(columns / 8) (the packed signs) must be at most "
            f"{MAX_BUFFER_ELEMENTS} bytes, got {num_bits} * "
            f"{composite.packed_width(cols)}"
        )


def _check_projection(projection: str) -> str:
    if projection not in PROJECTIONS:
        raise ValueError(f"`projection` must be one of {PROJECTIONS}, got {projection!r}")
    return projection


def _static_for_hadamard(value: Optional[int], what: str, projection: str) -> None:
    """The hadamard composite builds its transforms per block of bits: it needs `what` statically."""
    if projection == "hadamard" and value is None:
        raise ValueError(
            f"{what} must be known when the graph is built for projection='hadamard' "
            "(its composite's block structure follows it); got an unknown dimension"
        )


def simhash_projection(
    num_rows: int,
    num_bits: int,
    seed: int = 0,
    dtype: tf.DType = tf.float32,
    implementation: str = "auto",
    name: Optional[str] = None,
    projection: str = "gaussian",
) -> tf.Tensor:
    """The projection R [num_rows, num_bits] that simhash regenerates (see the module doc).

    The native kernel and the composite give bit-identical R for the same dtype, seed and
    `projection` ("gaussian" or "hadamard").

    Raises:
      ValueError: num_rows < 0, num_bits < 1, seed outside [0, 2**63 - 1], dtype not
        float32/float64, an unknown projection, or R larger than 2**31 elements.
    """
    _dispatch.check_implementation(implementation)
    _check_projection(projection)
    num_rows = _validation.require_int_in_range(num_rows, "num_rows", 0, MAX_INDEX)
    num_bits = _validation.require_int_in_range(num_bits, "num_bits", 1, MAX_INDEX)
    seed = _validation.require_int_in_range(seed, "seed", 0, constants.MAX_SEED)
    dtype = tf.as_dtype(dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype.name}")
    _check_sizes(num_rows, None, num_bits, "`num_rows`")
    with tf.name_scope(name or "simhash_projection"):
        return _dispatch.dispatch(
            "simhash_projection",
            implementation,
            lambda lib: lib.matcomp_simhash_projection(
                num_rows=num_rows, num_bits=num_bits, seed=seed, T=dtype, projection=projection
            ),
            lambda: composite.projection(num_rows, num_bits, seed, dtype, projection),
        )


def simhash_compress(
    a,
    num_bits: int,
    seed: int = 0,
    scale: str = "least_squares",
    implementation: str = "auto",
    name: Optional[str] = None,
    projection: str = "gaussian",
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Compresses `a` [m, n] to packed signs of Rᵀ·a and per-column scales (module doc).

    The kernel computes the numerators as Σ_b |(Rᵀ a)_bj| (= ⟨a_j, R S_j⟩) and the
    denominators ‖R S_j‖² through RᵀR when k·(m + n) < 2·m·n, never forming R·S then. Its result
    does not depend on the thread count. The composite may differ in a sign only where
    |(Rᵀ a)_bj| is within rounding noise of zero, and in the scales by rounding.

    Args:
      a: [m, n] float32 or float64, finite.
      num_bits: k, the rows of `signs` (>= 1).
      seed: generator seed, in [0, 2**63 - 1].
      scale: "least_squares" or "norm" (see the module doc).
      implementation: "native", "composite" or "auto" (see `_dispatch`).
      name: optional name scope.
      projection: "gaussian" (default) or "hadamard" (module doc); "hadamard" needs the rows
        of `a` known when the graph is built.

    Returns:
      (signs uint8 [num_bits, ceil(n/8)], scales [n] of a's dtype).

    Raises:
      ValueError: an argument breaks the rules above (known before running), or a size would
        make R, the signs or [m, n] exceed 2**31 elements.
      tf.errors.InvalidArgumentError: the same found at run time, or non-finite values in `a`.
    """
    _dispatch.check_implementation(implementation)
    num_bits = _validation.require_int_in_range(num_bits, "num_bits", 1, MAX_INDEX)
    seed = _validation.require_int_in_range(seed, "seed", 0, constants.MAX_SEED)
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}, got {scale!r}")
    _check_projection(projection)
    with tf.name_scope(name or "simhash_compress"):
        a = _validation.as_single_or_double_tensor(a, "a")
        _validation.require_rank(a, 2, "a")
        if a.shape.rank == 2:
            _check_sizes(a.shape[0], a.shape[1], num_bits, "the rows of `a`")

        def run_composite():
            _static_for_hadamard(
                a.shape[0] if a.shape.rank else None, "the rows of `a`", projection
            )
            return composite.simhash_compress(a, num_bits, seed, scale, projection)

        return _dispatch.dispatch(
            "simhash_compress",
            implementation,
            lambda lib: tuple(
                lib.matcomp_simhash_compress(
                    a, num_bits=num_bits, seed=seed, scale=scale, projection=projection
                )
            ),
            run_composite,
        )


def simhash_decompress(
    signs,
    scales,
    num_rows: int,
    seed: int = 0,
    implementation: str = "auto",
    name: Optional[str] = None,
    projection: str = "gaussian",
) -> tf.Tensor:
    """Â = R · S · diag(scales) [num_rows, n] from `simhash_compress`'s output.

    Differentiable with respect to `scales`: dL/dscales_j = ⟨dL/dÂ_j, R S_j⟩.

    Args:
      signs: uint8 [num_bits, ceil(n/8)] (layout in the module doc; padding bits ignored).
      scales: [n] float32 or float64; the output has its dtype.
      num_rows: m, the rows of the output (and of R), >= 0.
      seed: the seed `signs` were computed with, in [0, 2**63 - 1].
      implementation: "native", "composite" or "auto" (see `_dispatch`).
      name: optional name scope.
      projection: the projection `signs` were computed with ("gaussian" or "hadamard"; the
        latter needs the rows of `signs` known when the graph is built).

    Raises:
      ValueError: a rank, dtype or size breaks the rules above (known before running).
      tf.errors.InvalidArgumentError: the same found at run time.
    """
    _dispatch.check_implementation(implementation)
    num_rows = _validation.require_int_in_range(num_rows, "num_rows", 0, MAX_INDEX)
    seed = _validation.require_int_in_range(seed, "seed", 0, constants.MAX_SEED)
    _check_projection(projection)
    with tf.name_scope(name or "simhash_decompress"):
        signs = _validation.as_tensor(signs, "signs", tf.uint8)
        scales = _validation.as_single_or_double_tensor(scales, "scales")
        _validation.require_rank(signs, 2, "signs")
        _validation.require_rank(scales, 1, "scales")
        num_bits, packed = signs.shape if signs.shape.rank == 2 else (None, None)
        columns = scales.shape[0] if scales.shape.rank == 1 else None
        if num_bits == 0:
            raise ValueError("`signs` must have at least one row (num_bits >= 1), got none")
        if columns is not None:
            _validation.require_equal_dims(
                packed,
                composite.packed_width(columns),
                "`signs` must have ceil(n / 8) columns for `scales` of length n",
            )
        _check_sizes(num_rows, columns, num_bits, "`num_rows`")

        def run_composite():
            _static_for_hadamard(num_bits, "the rows of `signs` (num_bits)", projection)
            return composite.simhash_decompress(signs, scales, num_rows, seed, projection)

        return _dispatch.dispatch(
            "simhash_decompress",
            implementation,
            lambda lib: lib.matcomp_simhash_decompress(
                signs, scales, num_rows=num_rows, seed=seed, projection=projection
            ),
            run_composite,
        )


@tf.RegisterGradient(DECOMPRESS_OP_NAME)
def _simhash_decompress_grad(op, grad):
    """No gradient for the signs; for the scales Σ_b S_bj (Rᵀ g)_bj. The upstream gradient must
    have the output's shape (a wrong one is an error, not a silently broadcast result)."""
    signs, scales = op.inputs
    shape_check = tf.debugging.assert_equal(
        tf.shape(grad),
        tf.shape(op.outputs[0]),
        message="SimhashDecompress gradient: the upstream gradient must have the output's shape",
    )
    with tf.control_dependencies([shape_check]):
        grad = tf.ensure_shape(grad, op.outputs[0].shape)
    projection = op.get_attr("projection").decode()
    _static_for_hadamard(signs.shape[0], "the rows of `signs` (num_bits)", projection)
    return None, composite.scales_gradient(signs, scales, grad, op.get_attr("seed"), projection)
