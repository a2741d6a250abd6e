"""`CompressedForm`: how one m×n matrix is stored compressed and how to compute with it.

Every method's module defines its form (a subclass); the form is the one place that rebuilds Â
from the stored arrays and computes with it, for training (`CompressionOp`, where the blend
and the decompression may run native kernels) and for inference (the stripped Keras layers,
which build their form with `implementation="composite"` so that only plain TF ops are used
and `model.export()` and the TFLite converter take them).

A form's arrays are given as a sequence in the order of `variables()`.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp.ops import _dispatch

ArrayInfo = Tuple[str, Tuple[int, ...], str]  # (stored name, shape, dtype name)


class CompressedForm:
    """An m×n matrix held in compressed form.

    Subclasses set `kind` (the name saved in configs), list their arrays (`variables()`),
    rebuild Â (`matrix`) and override the products with cheaper factored ones where they exist.

    Args:
      rows, cols: the matrix's shape m × n.
      dtype: the dtype of the float arrays and of Â ("float32" unless said otherwise).
      implementation: how the ops it runs are dispatched ("auto", "native", "composite").
    """

    kind = ""

    def __init__(self, rows: int, cols: int, dtype="float32", implementation: str = "auto"):
        self.rows, self.cols = int(rows), int(cols)
        self.dtype = tf.as_dtype(dtype).name
        _dispatch.check_implementation(implementation)
        self.implementation = implementation

    def get_config(self) -> dict:
        """The JSON-able arguments that rebuild this form (see `registry.form_from_config`)."""
        return {"kind": self.kind, "rows": self.rows, "cols": self.cols, "dtype": self.dtype}

    # --- to implement ----------------------------------------------------------------------
    def variables(self) -> List[ArrayInfo]:
        """(stored name, shape, dtype name) of each stored array, in factor order."""
        raise NotImplementedError

    def matrix(self, arrays: Sequence[tf.Tensor]) -> tf.Tensor:
        """Â [m, n], differentiable with respect to the float arrays."""
        raise NotImplementedError

    def label(self) -> str:
        """A short description of the form's size parameters, e.g. "k=64"."""
        raise NotImplementedError

    # --- defaults, overridden where a factored computation is cheaper -----------------------
    def dense_part(self, a: tf.Tensor, arrays: Sequence[tf.Tensor]) -> tf.Tensor:
        """The dense weight's share of the blend: A itself (pruning + k-means: A ⊙ its mask)."""
        return a

    def blend(self, a: tf.Tensor, arrays: Sequence[tf.Tensor], alpha) -> tf.Tensor:
        """alpha·A + (1 − alpha)·Â (exactly Â once alpha is 0, for finite A), A as
        `dense_part` gives it."""
        approx = tf.cast(self.matrix(arrays), a.dtype)
        alpha = tf.cast(alpha, a.dtype)
        return alpha * self.dense_part(a, arrays) + (1 - alpha) * approx

    def matmul(self, x: tf.Tensor, arrays: Sequence[tf.Tensor]) -> tf.Tensor:
        """x [..., m] · Â."""
        return matmul_last_axis(x, self.matrix(arrays))

    def transposed_matmul(self, x: tf.Tensor, arrays: Sequence[tf.Tensor]) -> tf.Tensor:
        """x [b, n] · Âᵀ (graph_compression's `get_apply_matmul` convention)."""
        return tf.matmul(x, tf.cast(self.matrix(arrays), x.dtype), transpose_b=True)

    def gather_rows(self, ids, arrays: Sequence[tf.Tensor]) -> tf.Tensor:
        """Rows `ids` of Â (an embedding lookup)."""
        return tf.nn.embedding_lookup(self.matrix(arrays), ids)

    def conv(
        self,
        x: tf.Tensor,
        arrays: Sequence[tf.Tensor],
        kernel_shape: Tuple[int, ...],
        conv_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    ) -> tf.Tensor:
        """conv_fn(x, Â reshaped to `kernel_shape`)."""
        return conv_fn(x, tf.reshape(self.matrix(arrays), kernel_shape))

    def low_rank_factors(self, arrays: Sequence) -> Optional[Tuple]:
        """(B [m, k], C [k, n]) with Â = B·C when the form is such a product of dense
        factors (a stock Keras pair of layers can then hold it), else None."""
        return None

    def deployed_form(
        self, arrays: Dict[str, np.ndarray]
    ) -> Tuple["CompressedForm", Dict[str, np.ndarray]]:
        """(form, {stored name: array}) a deployed layer stores for these values of this
        form's arrays (NumPy, by `variables()` name): this form and the same arrays, unless
        the method stores its trained arrays otherwise (pruning + k-means: bit-packed codes
        whose bytes follow the mask). Sizes, strip and export all go through it."""
        return self, arrays

    # --- sizes -------------------------------------------------------------------------------
    def nbytes(self) -> int:
        """Bytes of the stored arrays, at their own dtypes."""
        return sum(
            int(np.prod(shape, dtype=np.int64)) * tf.as_dtype(dtype).size
            for _, shape, dtype in self.variables()
        )

    def dense_nbytes(self) -> int:
        """Bytes of the dense m×n matrix at the form's dtype."""
        return self.rows * self.cols * tf.as_dtype(self.dtype).size

    def _narrower_than_dense(self, k: int) -> bool:
        """Whether a width-k intermediate costs fewer multiplications than using Â."""
        return k * (self.rows + self.cols) < self.rows * self.cols


def matmul_last_axis(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """x [..., m] · w [m, p] for inputs of any rank >= 2 (w cast to x's dtype)."""
    w = tf.cast(w, x.dtype)
    if x.shape.rank == 2:
        return tf.matmul(x, w)
    return tf.tensordot(x, w, axes=1)
