"""Compression ops: the weight a model uses while one of its matrices is compressed in training.

graph_compression's module, on TensorFlow 2 (graph/Session, eager, tf.function, XLA):

* `MatrixCompressorInterface` (also spelled `MatrixCompressorInferface`) and
  `LowRankDecompMatrixCompressor`: the algorithms (see `tf_matcomp.compressors`).
* `CompressionOp` (`op`): for one weight A it owns the state (`state`: alpha, the last firing
  step, the number of firings, the compressed factors and the number of skipped updates, all
  tf.Variables) and gives the weight to use, `alpha·A + (1 − alpha)·Â` (`blend`; Â from the
  method's compressed form: B·C for low-rank and dictionary learning, R·S·diag(D) for simhash,
  codebook[codes] for k-means). `SimhashCompressionOp`, `KMeansCompressionOp` and
  `DLCompressionOp` (`method_ops`) are the same op checked against their compressor.
* `ApplyCompression`: applies one spec to any number of weights, each with its own op and
  schedule, and runs their updates together.

Updates (`updates`) follow `tf_matcomp.schedule.AlphaSchedule` (firing rule, alpha staircase);
the factors are computed at the first firing from the weight's value then, with shapes known
beforehand from the compressor. `update_option` picks who runs updates:

* 0 — TF ops: `all_update_op()` in a graph (run it every step; the global step must advance),
  `update(step)` / `all_update_op()` eagerly or inside `tf.function` (also with jit_compile);
  factors from the compressor's TF path.
* 1 — Python: `run_update_step(session=None, step_number=None)` with a Session or eagerly;
  factors from the NumPy path (the TF path when use_tpu). The graph does not grow: the few
  assign ops it feeds are built once, with the op.
* 2 — both (they share the state, so a step never fires twice); 3 — no updates.

A firing is applied only with finite factors (the weight too at the first firing); otherwise it
is skipped — skipped_update_count + 1, nothing else changes, the update is tried again at the
next step — and eagerly or from Python a `SkippedUpdateWarning` names the weight and why
(`warn_on_skipped_updates`). This holds under jit_compile, where the kernels' checks vanish;
see `updates`.
"""

from tf_matcomp.compression_op.apply_compression import ApplyCompression
from tf_matcomp.compression_op.method_ops import (
    DLCompressionOp,
    KMeansCompressionOp,
    KMeansPruningCompressionOp,
    SimhashCompressionOp,
    op_class_for,
)
from tf_matcomp.compression_op.op import (
    CompressionOp,
    CompressionOpInterface,
    warn_on_skipped_updates,
)
from tf_matcomp.compression_op.spec import (
    SUPPORTED_COMPRESSION_OPTIONS,
    UPDATE_BOTH,
    UPDATE_NONE,
    UPDATE_OPTIONS,
    UPDATE_PYTHON,
    UPDATE_TF,
    validate_spec,
)
from tf_matcomp.compression_op.updates import SkippedUpdateWarning
from tf_matcomp.compressors.base import MatrixCompressorInferface, MatrixCompressorInterface
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor

__all__ = [
    "ApplyCompression",
    "CompressionOp",
    "CompressionOpInterface",
    "DLCompressionOp",
    "KMeansCompressionOp",
    "KMeansPruningCompressionOp",
    "LowRankDecompMatrixCompressor",
    "MatrixCompressorInferface",
    "MatrixCompressorInterface",
    "SimhashCompressionOp",
    "SkippedUpdateWarning",
    "SUPPORTED_COMPRESSION_OPTIONS",
    "UPDATE_BOTH",
    "UPDATE_NONE",
    "UPDATE_OPTIONS",
    "UPDATE_PYTHON",
    "UPDATE_TF",
    "op_class_for",
    "validate_spec",
    "warn_on_skipped_updates",
]
