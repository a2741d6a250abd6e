"""Input/output compression (compression_option 9): A's input and/or output projected blockwise.

The sides are A's axes as `x · A` meets them (a Keras kernel [in, out]; `tf.matmul(x, W)` for W
from `apply_compression`): rows are the input, columns the output. With A [m, n]:

  * compress_input, input_block_size b_i (divides m), input_compression_factor f_i (divides
    b_i): B [b_i, b_i/f_i] (`b_matrix`), one projection shared by the m/b_i row blocks,
    P_in = diag(B, …, B) [m, m/f_i];
  * compress_output, output_block_size b_o (divides n), output_compression_factor f_o
    (divides b_o): D [b_o/f_o, b_o] (`d_matrix`), shared by the n/b_o column blocks,
    P_out = diag(D, …, D) [n/f_o, n];
  * the core C [m/f_i, n/f_o] (`c_matrix`), with f = 1 on a side that is off;

    Â = P_in · C · P_out,   x · Â = ((x blocked by b_i) · B) · C, blocked by b_o/f_o, · D

so b_i²/f_i + (m/f_i)(n/f_o) + b_o²/f_o values are stored (the B or D term only when its
side is on). Block k of x (entries k·b_i … (k+1)·b_i − 1) meets B; products never form Â
when the factored route is cheaper. A convolution mixes every row of its kernel view, so
`conv` goes through Â. One block on the only side (b_i = m, no output side, or the mirror) is
a rank-m/f_i product Â = B·C (`low_rank_factors`: strip then uses stock layers).

Initialisation: where graph_compression drew B, C and D at random (and then never used A
or alpha), the factors are fitted to A at the first firing and blended in by the alpha
schedule like every other method. With B and D of orthonormal columns / rows,
‖A − Â‖² is smallest for C = P_inᵀ·A·P_outᵀ, and then equals ‖A‖² − ‖C‖². One side alone
is solved exactly: B holds the top b_i/f_i eigenvectors of Σ_k A_k·A_kᵀ over the row blocks
A_k [b_i, n] (D likewise, from the column blocks). With both sides, B and D start from those
one-sided fits (the higher-order SVD) and `ALTERNATING_PASSES` passes then refit each given
the other (each step the exact optimum for that side, so the error never grows).

graph_compression's other bugs, fixed: its weight was a no-op (apply_compression returned
`tf.no_op()`); C's shape divided by a factor even on a side that was off; no divisibility was
checked; factors were float32 whatever A's dtype; sizes were never counted. Here a factor or
block size set on a side that is off is a ValueError, as are both sides off. Its
`get_apply_matmul` for option 9 computed x·A, unlike every other option; tf_matcomp's
`CompressionOp.get_apply_matmul` is x·Aᵀ for every option, A then being [out, in], so there
x meets A's columns: the output side above.
"""

from typing import Dict, List, Optional, Tuple

# {"input": (block size, factor) or None when the side is off, "output": ...}
Sides = Dict[str, Optional[Tuple[int, int]]]

import numpy as np
import tensorflow as tf

from tf_matcomp.compressors import base
from tf_matcomp.compressors.block_diagonal import divisors, merge_last_axes, split_last_axis
from tf_matcomp.compressors.form import CompressedForm, matmul_last_axis
from tf_matcomp.compressors.method import Method
from tf_matcomp.hparams import HParams

ALTERNATING_PASSES = 2
# The op-spec hparams of this method, graph_compression's names.
SIDE_HPARAMS = {
    "input": ("compress_input", "input_block_size", "input_compression_factor"),
    "output": ("compress_output", "output_block_size", "output_compression_factor"),
}
SIDE_NAMES = {"input": "in", "output": "out"}  # in form labels: "in32/4+out8/2"


def side_setting(side: str, on, block, factor) -> Optional[Tuple[int, int]]:
    """(block size, factor) of one side ("input" or "output"), None when it is off.

    Raises:
      ValueError: a flag that is not a bool, a block size or factor that is not a positive
        int, a factor not dividing its block size, or a block size or factor set (not 1) on a
        side that is off; each names the hparam.
    """
    flag, block_name, factor_name = SIDE_HPARAMS[side]
    if not isinstance(on, (bool, np.bool_)):
        raise ValueError(f"{flag} must be True or False, got {on!r}")
    block = base.require_positive_int(block, block_name)
    factor = base.require_positive_int(factor, factor_name)
    if not on:
        for name, value in ((block_name, block), (factor_name, factor)):
            if value != 1:
                raise ValueError(
                    f"{name} ({value}) is set but {flag} is False: set {flag}=True or "
                    f"leave {name} at 1"
                )
        return None
    if block % factor:
        raise ValueError(
            f"{factor_name} ({factor}) must divide {block_name} ({block}): a block of "
            f"{block} entries is projected to {block}/{factor}"
        )
    return block, factor


def require_a_side(sides: Sides) -> Sides:
    """`sides` unless both are off (ValueError)."""
    if sides["input"] is None and sides["output"] is None:
        raise ValueError(
            "compression_option 9 needs compress_input or compress_output (or both) True"
        )
    return sides


def side_settings(spec: HParams) -> Sides:
    """The sides a spec turns on; ValueError as `side_setting` says, or for both sides off."""
    return require_a_side(
        {
            side: side_setting(side, *(spec.get(k) for k in keys))
            for side, keys in SIDE_HPARAMS.items()
        }
    )


def factor_names_for(sides: Sides) -> Tuple[str, ...]:
    """The stored arrays' names, in factor order: b_matrix (input on), c_matrix, d_matrix
    (output on)."""
    return tuple(
        name
        for name, present in (
            ("b_matrix", sides["input"] is not None),
            ("c_matrix", True),
            ("d_matrix", sides["output"] is not None),
        )
        if present
    )


def require_blocks_fit(shape, sides: Sides) -> Tuple[int, int]:
    """(m, n) when each side's block size divides its axis (rows: input, columns: output)."""
    m, n = base.matrix_shape(shape)
    for side, size, axis in (("input", m, "rows"), ("output", n, "columns")):
        if sides[side] is not None and size % sides[side][0]:
            block_name = SIDE_HPARAMS[side][1]
            raise ValueError(
                f"{block_name} ({sides[side][0]}) must divide the weight's {axis} ({size}) for "
                f"shape {m}x{n} (it may be any divisor of {size}: {divisors(size)})"
            )
    return m, n


def array_shapes(m: int, n: int, sides: Sides) -> Dict[str, Tuple[int, int]]:
    """The stored arrays' shapes by name: B [b_i, b_i/f_i], C [m/f_i, n/f_o], D [b_o/f_o, b_o]
    (B and D only for a side that is on, whose factor alone divides C's axis)."""
    shapes, core = {}, [m, n]
    for axis, (side, name) in enumerate((("input", "b_matrix"), ("output", "d_matrix"))):
        if sides[side] is not None:
            block, factor = sides[side]
            shapes[name] = (block, block // factor) if axis == 0 else (block // factor, block)
            core[axis] //= factor
    shapes["c_matrix"] = (core[0], core[1])
    return shapes


def _blockwise(x: tf.Tensor, projection: tf.Tensor) -> tf.Tensor:
    """x [..., p·a] · diag(projection, …, projection) for projection [a, b]: [..., p·b]."""
    parts = x.shape[-1] // projection.shape[0]
    return merge_last_axes(matmul_last_axis(split_last_axis(x, parts), projection))


class InputOutputForm(CompressedForm):
    """W = diag(B, …) · C · diag(D, …): B [b_i, b_i/f_i] (`b_matrix`, with compress_input),
    C [m/f_i, n/f_o] (`c_matrix`), D [b_o/f_o, b_o] (`d_matrix`, with compress_output).

    Args:
      rows, cols, dtype, implementation: as `CompressedForm`.
      input_block_size, input_compression_factor: b_i and f_i; 0 and 0 for no input side.
      output_block_size, output_compression_factor: b_o and f_o; 0 and 0 for no output side.

    Raises:
      ValueError: the rules of `side_setting` and `require_blocks_fit`, or no side at all.
    """

    kind = "input_output"

    def __init__(
        self,
        rows: int,
        cols: int,
        input_block_size: int = 0,
        input_compression_factor: int = 0,
        output_block_size: int = 0,
        output_compression_factor: int = 0,
        dtype="float32",
        implementation: str = "auto",
    ):
        super().__init__(rows, cols, dtype, implementation)
        # A side that is off is stored as block size and factor 0.
        settings = {
            "input": (input_block_size, input_compression_factor),
            "output": (output_block_size, output_compression_factor),
        }
        self.sides = require_a_side(
            {
                side: side_setting(side, bool(block), int(block) or 1, int(factor) or 1)
                for side, (block, factor) in settings.items()
            }
        )
        require_blocks_fit((self.rows, self.cols), self.sides)

    def get_config(self) -> dict:
        config = super().get_config()
        for side in ("input", "output"):
            block, factor = self.sides[side] or (0, 0)
            config[f"{side}_block_size"] = block
            config[f"{side}_compression_factor"] = factor
        return config

    def variables(self):
        shapes = array_shapes(self.rows, self.cols, self.sides)
        return [(name, shapes[name], self.dtype) for name in factor_names_for(self.sides)]

    def label(self) -> str:
        return "+".join(
            f"{SIDE_NAMES[side]}{s[0]}/{s[1]}" for side, s in self.sides.items() if s is not None
        )

    def _split(self, arrays):
        """(B or None, C, D or None) from the stored arrays."""
        arrays = list(arrays)
        b = arrays.pop(0) if self.sides["input"] is not None else None
        c = arrays.pop(0)
        d = arrays.pop(0) if self.sides["output"] is not None else None
        return b, c, d

    def factored_is_cheaper(self) -> bool:
        """Whether x·B·C·D (m·b_i/f_i + m·n/(f_i·f_o) + n·b_o/f_o multiplications per row)
        beats x·W."""
        shapes = array_shapes(self.rows, self.cols, self.sides)
        cost = shapes["c_matrix"][0] * shapes["c_matrix"][1]
        if "b_matrix" in shapes:
            cost += self.rows * shapes["b_matrix"][1]
        if "d_matrix" in shapes:
            cost += self.cols * shapes["d_matrix"][0]
        return cost < self.rows * self.cols

    def matrix(self, arrays):
        b, c, d = self._split(arrays)
        right = c if d is None else _blockwise(c, d)  # C · P_out [m/f_i, n]
        if b is None:
            return right
        return tf.transpose(_blockwise(tf.transpose(right), tf.transpose(b)))  # P_in · (C·P_out)

    def matmul(self, x, arrays):
        if not self.factored_is_cheaper():
            return super().matmul(x, arrays)
        b, c, d = (None if f is None else tf.cast(f, x.dtype) for f in self._split(arrays))
        x = x if b is None else _blockwise(x, b)
        x = matmul_last_axis(x, c)
        return x if d is None else _blockwise(x, d)

    def transposed_matmul(self, x, arrays):
        if not self.factored_is_cheaper():
            return super().transposed_matmul(x, arrays)
        b, c, d = (None if f is None else tf.cast(f, x.dtype) for f in self._split(arrays))
        x = x if d is None else _blockwise(x, tf.transpose(d))
        x = tf.matmul(x, c, transpose_b=True)
        return x if b is None else _blockwise(x, tf.transpose(b))

    def gather_rows(self, ids, arrays):
        b, c, d = self._split(arrays)
        ids = tf.convert_to_tensor(ids)
        if b is None:
            rows = tf.gather(c, ids)
        else:  # row r of P_in·C: B's row r mod b_i times C's rows of block r div b_i
            block = self.sides["input"][0]
            core_blocks = tf.reshape(c, [self.rows // block, b.shape[1], c.shape[1]])
            rows = tf.einsum(
                "...k,...kn->...n", tf.gather(b, ids % block), tf.gather(core_blocks, ids // block)
            )
        return rows if d is None else _blockwise(rows, d)

    def low_rank_factors(self, arrays):
        """(B, C) for one input block and no output side, (C, D) for the mirror case: Â is
        then a product of two dense factors."""
        b, c, d = self._split(arrays)
        one_input_block = b is not None and self.sides["input"][0] == self.rows
        one_output_block = d is not None and self.sides["output"][0] == self.cols
        if one_input_block and d is None:
            return b, c
        if one_output_block and b is None:
            return c, d
        return None


def _np_top_eigenvectors(gram: np.ndarray, k: int) -> np.ndarray:
    """The k eigenvectors [p, k] of the largest eigenvalues of a symmetric `gram` [p, p]."""
    _, vectors = np.linalg.eigh(gram)
    return vectors[:, ::-1][:, :k]


def _tf_top_eigenvectors(gram: tf.Tensor, k: int) -> tf.Tensor:
    """`_np_top_eigenvectors` in TF ops (tf.linalg.eigh compiles under XLA)."""
    _, vectors = tf.linalg.eigh(gram)
    return tf.reverse(vectors, [1])[:, :k]


class _Fit:
    """The least-squares fit of B, C, D to A (module docstring), written once over an array
    namespace: NumPy (`static_matrix_compressor`) or TF ops (`tpu_matrix_compressor`)."""

    def __init__(self, sides: Sides, eigenvectors, einsum, transpose, reshape):
        self.sides = sides
        self._eigenvectors, self._einsum = eigenvectors, einsum
        self._transpose, self._reshape = transpose, reshape

    def _input_basis(self, a):
        """B [b_i, b_i/f_i]: the top eigenvectors of Σ_k A_k·A_kᵀ over the row blocks of a."""
        block, factor = self.sides["input"]
        blocks = self._reshape(a, [a.shape[0] // block, block, a.shape[1]])
        return self._eigenvectors(self._einsum("kac,kbc->ab", blocks, blocks), block // factor)

    def _output_basis(self, a):
        """D [b_o/f_o, b_o]: the mirror of `_input_basis` over the column blocks of a."""
        block, factor = self.sides["output"]
        blocks = self._reshape(a, [a.shape[0], a.shape[1] // block, block])
        gram = self._einsum("rka,rkb->ab", blocks, blocks)
        return self._transpose(self._eigenvectors(gram, block // factor))

    def _project_rows(self, a, b):
        """P_inᵀ · a: each row block of a [m, p] projected by Bᵀ ([m/f_i, p])."""
        block = b.shape[0]
        blocks = self._reshape(a, [a.shape[0] // block, block, a.shape[1]])
        return self._reshape(self._einsum("kap,ab->kbp", blocks, b), [-1, a.shape[1]])

    def _project_cols(self, a, d):
        """a · P_outᵀ: each column block of a [p, n] projected by Dᵀ ([p, n/f_o])."""
        block = d.shape[1]
        blocks = self._reshape(a, [a.shape[0], a.shape[1] // block, block])
        return self._reshape(self._einsum("pka,ba->pkb", blocks, d), [a.shape[0], -1])

    def factors(self, a) -> list:
        """[B,] C[, D] of a."""
        b = self._input_basis(a) if self.sides["input"] is not None else None
        d = self._output_basis(a) if self.sides["output"] is not None else None
        if b is not None and d is not None:
            for _ in range(ALTERNATING_PASSES):
                b = self._input_basis(self._project_cols(a, d))
                d = self._output_basis(self._project_rows(a, b))
        core = a if b is None else self._project_rows(a, b)
        core = core if d is None else self._project_cols(core, d)
        return [f for f in (b, core, d) if f is not None]


class InputOutputCompressor(base.MatrixCompressorInterface):
    """Input/output compression: A ≈ diag(B, …)·C·diag(D, …), least squares (module doc).

    Args:
      spec: compressor hparams (`get_default_hparams()`: compress_input, input_block_size,
        input_compression_factor, compress_output, output_block_size,
        output_compression_factor; is_b/c/d_matrix_trainable decide whether the optimizer
        trains B, C and D).

    Raises:
      ValueError: see `side_settings`.
    """

    def __init__(self, spec=None) -> None:
        super().__init__(spec)
        self._sides = side_settings(self._spec)
        self.factor_names = factor_names_for(self._sides)  # depends on the sides that are on

    @staticmethod
    def get_default_hparams() -> HParams:
        """The shared compressor spec plus graph_compression's op defaults of option 9:
        compress_input True with block size and factor 1, compress_output False."""
        spec = base.compressor_hparams()
        for side, (flag, block_name, factor_name) in SIDE_HPARAMS.items():
            spec.add_hparam(flag, side == "input")
            spec.add_hparam(block_name, 1)
            spec.add_hparam(factor_name, 1)
        return spec

    @classmethod
    def hparams_for_ratio(cls, shape, ratio: float, spec: HParams) -> Dict[str, int]:
        """Block sizes and factors, on the sides the spec turns on, closest to `ratio`: of the
        settings at least `ratio` times smaller, the one storing the most values (then the
        largest blocks); the one storing the fewest (then the largest blocks) when none is.
        Every block size dividing its axis and factor > 1 dividing its block is tried."""
        m, n = base.matrix_shape(shape)
        sides = side_settings(spec)

        def options(side, size):
            """(settings, projection values, reduced size, block size) per setting of a side."""
            if sides[side] is None:
                return [None], np.zeros(1, np.int64), np.array([size]), np.zeros(1, np.int64)
            settings = [(b, f) for b in divisors(size) for f in divisors(b) if f > 1]
            projection = np.array([b * b // f for b, f in settings], np.int64)
            reduced = np.array([size // f for _, f in settings], np.int64)
            return settings, projection, reduced, np.array([b for b, _ in settings])

        inputs, projection_in, rows, blocks_in = options("input", m)
        outputs, projection_out, cols, blocks_out = options("output", n)
        # b_i²/f_i + (m/f_i)(n/f_o) + b_o²/f_o for every (input, output) setting pair at once.
        stored = (projection_in[:, None] + rows[:, None] * cols[None, :] + projection_out).ravel()
        blocks = (blocks_in[:, None] + blocks_out[None, :]).ravel()
        reaching = np.flatnonzero(m * n >= ratio * stored)
        if reaching.size:  # np.lexsort sorts by its last key first
            pick = reaching[np.lexsort((blocks[reaching], stored[reaching]))[-1]]
        else:
            pick = np.lexsort((-blocks, stored))[0]
        i, o = np.unravel_index(pick, (len(inputs), len(outputs)))
        overrides = {}
        for side, setting in (("input", inputs[i]), ("output", outputs[o])):
            if setting is not None:
                _, block_name, factor_name = SIDE_HPARAMS[side]
                overrides[block_name], overrides[factor_name] = map(int, setting)
        return overrides

    def validate_shape(self, shape):
        return require_blocks_fit(shape, self._sides)

    def form(self, shape, dtype: tf.DType = tf.float32) -> InputOutputForm:
        m, n = self.validate_shape(shape)
        settings = [s if s is not None else (0, 0) for s in self._sides.values()]
        return InputOutputForm(m, n, *settings[0], *settings[1], tf.as_dtype(dtype).name)

    def factor_trainable(self) -> Tuple[bool, ...]:
        trainable = {
            "b_matrix": self._spec.is_b_matrix_trainable,
            "c_matrix": self._spec.is_c_matrix_trainable,
            "d_matrix": self._spec.is_d_matrix_trainable,
        }
        return tuple(trainable[name] for name in self.factor_names)

    def static_matrix_compressor(self, a_matrix: np.ndarray) -> List[np.ndarray]:
        """[B,] C[, D]: the least-squares fit, in NumPy (float64 stays float64, anything else
        float32)."""
        a = np.asarray(a_matrix)
        a = a if a.dtype == np.float64 else a.astype(np.float32)
        self.validate_shape(a.shape)
        fit = _Fit(self._sides, _np_top_eigenvectors, np.einsum, np.transpose, np.reshape)
        return [f.astype(a.dtype) for f in fit.factors(a)]

    def tpu_matrix_compressor(self, a_matrix: tf.Tensor) -> List[tf.Tensor]:
        """[B,] C[, D]: the least-squares fit, in TF ops (XLA-compilable); float16 and
        bfloat16 are fitted in float32 (eigh takes no half types)."""
        a = tf.convert_to_tensor(a_matrix)
        self.validate_shape(a.shape)
        if a.dtype not in (tf.float32, tf.float64):
            a = tf.cast(a, tf.float32)
        fit = _Fit(self._sides, _tf_top_eigenvectors, tf.einsum, tf.transpose, tf.reshape)
        return fit.factors(a)


METHOD = Method(
    name="inout",
    label="input/output",
    options=(9,),
    compressor_class=InputOutputCompressor,
    form_class=InputOutputForm,
    factor_attributes={
        "b_matrix_tfvar": "b_matrix",
        "c_matrix_tfvar": "c_matrix",
        "d_matrix_tfvar": "d_matrix",
    },
    op_hparams=tuple(name for names in SIDE_HPARAMS.values() for name in names),
)
