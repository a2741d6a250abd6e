"""Compression ops: the weight a model uses while one of its matrices is compressed in training.

graph_compression's module, on TensorFlow 2 (graph/Session, eager, tf.function, XLA):

* `MatrixCompressorInterface` (also spelled `MatrixCompressorInferface`) and
  `LowRankDecompMatrixCompressor`: the algorithms (see `tf_matcomp.compressors`).
* `CompressionOp`: for one weight A it owns the state — alpha, the last firing step, the
  number of firings and the compressed factors, all tf.Variables — and gives the weight to
  use, `alpha·A + (1 − alpha)·Â` (Â = B·C for low-rank and dictionary learning, R·S·diag(D) for
  simhash, codebook[codes] for k-means). `SimhashCompressionOp`, `KMeansCompressionOp` and
  `DLCompressionOp` are the same op checked against their compressor.
* `ApplyCompression`: applies one spec to any number of weights, each with its own op and
  schedule, and runs their updates together.

Updates follow `tf_matcomp.schedule.AlphaSchedule` (firing rule, alpha staircase); the factors
are computed at the first firing from the weight's value then, with shapes known beforehand
from the compressor. `update_option` picks who runs updates:

* 0 — TF ops: `all_update_op()` in a graph (run it every step; the global step must advance),
  `update(step)` / `all_update_op()` eagerly or inside `tf.function` (also with jit_compile);
  factors from the compressor's TF path.
* 1 — Python: `run_update_step(session=None, step_number=None)` with a Session or eagerly;
  factors from the NumPy path (the TF path when use_tpu). The graph does not grow: the few
  assign ops it feeds are built once, with the op.
* 2 — both (they share the state, so a step never fires twice); 3 — no updates.
"""
import math
import re
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tf_matcomp import schedule as schedule_lib
from tf_matcomp import summaries
from tf_matcomp.compressors import base as compressor_base
from tf_matcomp.compressors.base import MatrixCompressorInferface, MatrixCompressorInterface
from tf_matcomp.compressors.dictionary_learning import DLMatrixCompressor
from tf_matcomp.compressors.kmeans import KmeansMatrixCompressor
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor
from tf_matcomp.compressors.simhash import SimhashMatrixCompressor
from tf_matcomp.hparams import HParams

__all__ = ["ApplyCompression", "CompressionOp", "CompressionOpInterface", "DLCompressionOp",
           "KMeansCompressionOp", "LowRankDecompMatrixCompressor", "MatrixCompressorInferface",
           "MatrixCompressorInterface", "SimhashCompressionOp", "SUPPORTED_COMPRESSION_OPTIONS",
           "UPDATE_OPTIONS", "validate_spec"]

# 0 behaves as 1 (low-rank), as in graph_compression.
SUPPORTED_COMPRESSION_OPTIONS = (0, 1, 2, 3, 4)
UPDATE_TF, UPDATE_PYTHON, UPDATE_BOTH, UPDATE_NONE = 0, 1, 2, 3
UPDATE_OPTIONS = (UPDATE_TF, UPDATE_PYTHON, UPDATE_BOTH, UPDATE_NONE)


def _default_op_hparams() -> HParams:
    return HParams(
        name="model_compression",
        alpha_decrement_value=0.01,
        begin_compression_step=0,
        end_compression_step=-1,
        compression_frequency=10,
        use_tpu=False,
        compression_option=0,
        rank=7,
        update_option=0,
        run_update_interval_check=1,
        block_size=1,
        pruning_fraction=0.0,
        # Pruning schedule of option 8 (magnitude pruning + k-means), kept for compatibility.
        begin_pruning_step=0,
        end_pruning_step=-1,
        weight_sparsity_map=[""],
        block_dims_map=[""],
        threshold_decay=0.0,
        pruning_frequency=10,
        nbins=256,
        block_height=1,
        block_width=1,
        block_pooling_function="AVG",
        initial_sparsity=0.0,
        target_sparsity=0.5,
        sparsity_function_begin_step=0,
        sparsity_function_end_step=100,
        sparsity_function_exponent=3.0,
        gradient_decay_rate=0.99,
        prune_option="weight",
        # Newer upstream keys (option 9 and later), kept for compatibility.
        add_summary=True,
        use_collection=False,
        do_transpose=False,
        compress_input=True,
        input_compression_factor=1,
        input_block_size=1,
        compress_output=False,
        output_compression_factor=1,
        output_block_size=1,
        block_method="loop",
        block_compression_factor=1,
        num_bases=1)


def validate_spec(spec: HParams) -> schedule_lib.AlphaSchedule:
    """Checks an op spec; returns its schedule. ValueError names the hparam and the rule."""
    for key in ("rank", "compression_option", "update_option"):
        if key not in spec:
            raise ValueError(f"the compression spec has no hparam {key!r}")
    if spec.compression_option not in SUPPORTED_COMPRESSION_OPTIONS:
        raise ValueError(
            f"compression_option must be one of {SUPPORTED_COMPRESSION_OPTIONS} (0 and 1 "
            f"low-rank, 2 simhash, 3 dictionary learning, 4 k-means), got "
            f"{spec.compression_option!r}")
    if spec.update_option not in UPDATE_OPTIONS:
        raise ValueError(f"update_option must be one of {UPDATE_OPTIONS} (0 TF ops, 1 Python, "
                         f"2 both, 3 none), got {spec.update_option!r}")
    compressor_base.require_positive_int(spec.rank, "rank")
    if "block_size" in spec:
        compressor_base.require_positive_int(spec.block_size, "block_size")
    return schedule_lib.AlphaSchedule.from_spec(spec)


def _scope_name(scope) -> str:
    name = getattr(scope, "name", scope)
    return str(name) if name else "default_scope"


def _module_name(scope_name: str) -> str:
    name = re.sub(r"\W", "_", scope_name)
    return name if re.match(r"^[A-Za-z_]", name) else f"op_{name}"


def _in_graph_mode() -> bool:
    """Building a TF1-style graph (not eager, not inside a tf.function)."""
    return not tf.executing_eagerly() and not tf.inside_function()


def _base_dtype(value) -> tf.DType:
    return tf.as_dtype(value.dtype).base_dtype


class CompressionOpInterface:
    """Interface of a compression op (graph_compression's CompressionOpInterface)."""

    def __init__(self, scope="default_scope", spec=None, global_step=None):
        del scope, spec, global_step

    def get_apply_compression_op(self, a_matrix_tfvar, matrix_compressor,
                                 scope="default_scope"):
        """Returns [compressed weight tensor, update op] for `a_matrix_tfvar`."""
        raise NotImplementedError()

    def get_update_op(self):
        """The op (graph) that runs one scheduled update."""
        raise NotImplementedError()


class CompressionOp(CompressionOpInterface, tf.Module):
    """Replaces a weight A by alpha·A + (1 − alpha)·Â with per-weight schedule state.

    Args:
      scope: name (or tf.compat.v1 VariableScope) under which the op's variables are created.
      spec: op hparams (`get_default_hparams()`); copied, never mutated. Validated here:
        ValueError for begin < 0, end < begin (unless −1), frequency < 1, rank <= 0,
        alpha_decrement_value outside (0, 1], an unknown compression or update option.
      global_step: the step variable or tensor updates read when not given a step (graph mode
        falls back to tf.compat.v1.train.get_global_step()).
      variable_factory: optional `f(name, initial_value, dtype, trainable) -> variable` used to
        create the op's state (e.g. a Keras layer's `add_weight`); default tf.Variable.

    Attributes (after get_apply_compression_op): a_matrix_tfvar, alpha, b_matrix_tfvar,
    c_matrix_tfvar (the first/second factor), factor_variables, last_alpha_update_step,
    alpha_update_count, final_op (graph mode), update_op, uncompressed_size, compressed_size,
    uncompressed_bits, compressed_bits, compression_ratio.
    """

    expected_compressor = MatrixCompressorInterface

    def __init__(self, scope="default_scope", spec=None, global_step=None,
                 variable_factory=None):
        CompressionOpInterface.__init__(self, scope, spec, global_step)
        self._scope_name = _scope_name(scope)
        tf.Module.__init__(self, name=_module_name(self._scope_name))
        self._spec = (spec if spec is not None else self.get_default_hparams()).copy()
        self._schedule = validate_spec(self._spec)
        self._global_step = global_step
        self._variable_factory = variable_factory
        self.matrix_compressor = None
        self.a_matrix_tfvar = None
        self.alpha = None
        self.b_matrix_tfvar = None
        self.c_matrix_tfvar = None
        self.factor_variables = []
        self.last_alpha_update_step = None
        self.alpha_update_count = None
        self.final_op = None
        self.update_op = None
        self.uncompressed_size = 0
        self.compressed_size = 0
        self.uncompressed_bits = 0
        self.compressed_bits = 0
        self._factor_specs = ()
        self._graph_python_ops = None

    # --- spec ----------------------------------------------------------------------------
    @staticmethod
    def get_default_hparams() -> HParams:
        """The op spec with graph_compression's defaults.

        name: spec name. alpha_decrement_value (0.01): alpha's step down per firing, in (0, 1].
        begin_compression_step (0) / end_compression_step (−1 = never stop): the steps between
        which updates fire (both inclusive). compression_frequency (10): steps between firings.
        use_tpu (False): compute factors only with TF ops. compression_option (0): 0/1 low-rank,
        2 simhash, 3 dictionary learning, 4 k-means. rank (7; graph_compression's README says
        100): low-rank, simhash and dictionary learning read it as a compression factor ×100
        (k = ceil(min(m,n)·100/rank) for low-rank), k-means as the number of centroids — see
        `tf_matcomp.compressors`. update_option (0): 0 TF ops, 1 Python, 2 both, 3 none.
        run_update_interval_check (1): with 0, a Python update without step_number uses step 1
        (as graph_compression). block_size (1): k-means block length. pruning_fraction (0.0):
        k-means pre-pruning. add_summary (True): in a graph, add tf.compat.v1 summaries when a
        weight is compressed. The pruning and input/output-compression keys are accepted for
        compatibility and not used by options 0–4.
        """
        return _default_op_hparams()

    def get_spec(self) -> HParams:
        return self._spec

    @property
    def schedule(self) -> schedule_lib.AlphaSchedule:
        return self._schedule

    @property
    def scope_name(self) -> str:
        return self._scope_name

    @property
    def factor_specs(self) -> tuple:
        """The FactorSpec (name, shape, dtype, trainable) of each factor variable."""
        return self._factor_specs

    def print_hparams(self) -> None:
        tf.get_logger().info(self._spec.to_json())

    # --- building ------------------------------------------------------------------------
    def _make_variable(self, name: str, initial_value, dtype: tf.DType, trainable: bool):
        if self._variable_factory is not None:
            return self._variable_factory(name=name, initial_value=initial_value, dtype=dtype,
                                          trainable=trainable)
        return tf.Variable(initial_value, name=name, dtype=dtype, trainable=trainable)

    def _create_state(self, a_shape, a_dtype) -> None:
        specs = self.matrix_compressor.factor_specs(a_shape, a_dtype)
        self._factor_specs = tuple(specs)
        self.alpha = self._make_variable("alpha", 1.0, tf.float32, False)
        self.last_alpha_update_step = self._make_variable(
            "last_alpha_update_step", tf.constant(-1, tf.int64), tf.int64, False)
        self.alpha_update_count = self._make_variable(
            "alpha_update_count", tf.constant(0, tf.int64), tf.int64, False)
        self.factor_variables = [
            self._make_variable(spec.name, tf.zeros(spec.shape, spec.dtype), spec.dtype,
                                spec.trainable) for spec in specs]
        self.b_matrix_tfvar = self.factor_variables[0]
        self.c_matrix_tfvar = self.factor_variables[1] if len(specs) > 1 else None

    def get_apply_compression_op(self, a_matrix_tfvar, matrix_compressor,
                                 scope="default_scope"):
        """Creates the state for `a_matrix_tfvar`; returns [compressed weight, update op].

        The update op is a graph op in graph mode (a no-op for update options 1 and 3); eagerly
        and inside tf.function it is None — use `update(step)` there.

        Raises:
          ValueError: the weight is not a fully known 2-D matrix, the compressor cannot take
            its shape (e.g. k-means block_size not dividing the columns), or update option 0/2
            in a graph has no global step.
        """
        if not isinstance(matrix_compressor, self.expected_compressor):
            raise ValueError(f"{type(self).__name__} needs a {self.expected_compressor.__name__},"
                             f" got {type(matrix_compressor).__name__}")
        if self.a_matrix_tfvar is not None:
            raise ValueError("this CompressionOp already compresses a weight; create one op "
                             "per weight (ApplyCompression does)")
        a_shape = tf.TensorShape(a_matrix_tfvar.shape)
        matrix_compressor.validate_shape(a_shape)
        a_dtype = _base_dtype(a_matrix_tfvar)
        if not a_dtype.is_floating:
            raise ValueError(f"the weight to compress must be floating point, got {a_dtype.name}")
        self.matrix_compressor = matrix_compressor
        self._scope_name = _scope_name(scope) if scope != "default_scope" else self._scope_name
        graph_mode = _in_graph_mode()
        if graph_mode and self._spec.update_option in (UPDATE_TF, UPDATE_BOTH):
            if self._global_step is None:
                self._global_step = tf.compat.v1.train.get_global_step()
            if self._global_step is None:
                raise ValueError("update_option 0 or 2 in a graph needs a global_step: pass "
                                 "global_step= or create one with "
                                 "tf.compat.v1.train.get_or_create_global_step()")
        if graph_mode:
            with tf.compat.v1.variable_scope(scope if scope != "default_scope"
                                             else self._scope_name):
                self._create_state(a_shape, a_dtype)
        else:
            with tf.init_scope(), tf.name_scope(self._scope_name):
                self._create_state(a_shape, a_dtype)
        self.a_matrix_tfvar = a_matrix_tfvar
        m, n = a_shape.as_list()
        self.uncompressed_size = m * n
        self.uncompressed_bits = m * n * a_dtype.size * 8
        self.compressed_bits = sum(spec.bits for spec in self._factor_specs)
        self.compressed_size = int(math.ceil(self.compressed_bits / (a_dtype.size * 8)))
        if graph_mode:
            with tf.compat.v1.name_scope(f"{self._scope_name}_compression/"):
                self.final_op = self.get_weight()
                if self._spec.update_option in (UPDATE_TF, UPDATE_BOTH):
                    self.update_op = self._conditional_update(self._global_step)
                else:
                    self.update_op = tf.no_op(name="no_tf_update")
                self._graph_python_ops = self._build_graph_python_ops()
                if self._spec.add_summary:
                    self.add_compression_summaries()
            return [self.final_op, self.update_op]
        return [self.get_weight(), None]

    # --- the weight ----------------------------------------------------------------------
    def _read(self, variable) -> tf.Tensor:
        return tf.convert_to_tensor(variable)

    def factors(self) -> List[tf.Tensor]:
        """The current factor values."""
        return [self._read(v) for v in self.factor_variables]

    def get_weight(self) -> tf.Tensor:
        """alpha·A + (1 − alpha)·Â from the current variables (a fresh tensor each call)."""
        self._require_built()
        return self.matrix_compressor.blend(self._read(self.a_matrix_tfvar), self.factors(),
                                            self._read(self.alpha))

    def get_compressed_weight(self) -> tf.Tensor:
        """Â alone, from the factors (what the weight is once alpha is 0)."""
        self._require_built()
        a_dtype = _base_dtype(self.a_matrix_tfvar)
        return tf.cast(self.matrix_compressor.reconstruct(self.factors(),
                                                          self.a_matrix_tfvar.shape), a_dtype)

    def reconstruction_error(self) -> tf.Tensor:
        """‖A − Â‖_F / ‖A‖_F (1 before the first firing, when Â is zero)."""
        a = self._read(self.a_matrix_tfvar)
        return tf.math.divide_no_nan(tf.norm(a - self.get_compressed_weight()), tf.norm(a))

    @property
    def compression_ratio(self) -> float:
        """uncompressed_bits / compressed_bits."""
        return self.uncompressed_bits / self.compressed_bits if self.compressed_bits else 0.0

    def get_apply_matmul(self, left_operand) -> tf.Tensor:
        """left_operand · Wᵀ (W as [out, in]); low-rank as (x·Cᵀ)·Bᵀ without forming B·C."""
        self._require_built()
        x = tf.convert_to_tensor(left_operand)
        if isinstance(self.matrix_compressor, LowRankDecompMatrixCompressor):
            alpha = tf.cast(self._read(self.alpha), x.dtype)
            b, c = (tf.cast(f, x.dtype) for f in self.factors())
            a = tf.cast(self._read(self.a_matrix_tfvar), x.dtype)
            return (alpha * tf.matmul(x, a, transpose_b=True)
                    + (1 - alpha) * tf.matmul(tf.matmul(x, c, transpose_b=True), b,
                                              transpose_b=True))
        return tf.matmul(x, tf.cast(self.get_weight(), x.dtype), transpose_b=True)

    def get_apply_embedding_lookup(self, ids) -> tf.Tensor:
        """Rows `ids` of W; low-rank gathers rows of A and B only."""
        self._require_built()
        if isinstance(self.matrix_compressor, LowRankDecompMatrixCompressor):
            alpha = self._read(self.alpha)
            a = self._read(self.a_matrix_tfvar)
            b, c = self.factors()
            alpha = tf.cast(alpha, a.dtype)
            return (alpha * tf.nn.embedding_lookup(a, ids)
                    + (1 - alpha) * tf.matmul(tf.nn.embedding_lookup(b, ids), c))
        return tf.nn.embedding_lookup(self.get_weight(), ids)

    def _require_built(self) -> None:
        if self.a_matrix_tfvar is None:
            raise ValueError("call get_apply_compression_op (or ApplyCompression."
                             "apply_compression) before using the op")

    # --- TF-op updates (update_option 0 and 2) -------------------------------------------
    def _use_tf_path(self) -> bool:
        return True

    def _compute_factors_tf(self) -> List[tf.Tensor]:
        a = self._read(self.a_matrix_tfvar)
        factors = self.matrix_compressor.tpu_matrix_compressor(a)
        return [tf.cast(f, spec.dtype) for f, spec in zip(factors, self._factor_specs)]

    def _assign_factors(self, values) -> list:
        return [v.assign(value) for v, value in zip(self.factor_variables, values)]

    def _conditional_update(self, step) -> tf.Tensor:
        """TF ops: fire when the schedule says so at `step`; returns whether it fired."""
        step = tf.cast(step, tf.int64)
        last = self._read(self.last_alpha_update_step)
        fire = self._schedule.should_fire_tf(step, last)

        def compute_factors():
            with tf.control_dependencies(self._assign_factors(self._compute_factors_tf())):
                return tf.constant(True)

        def fire_fn():
            computed = tf.cond(last < 0, compute_factors, lambda: tf.constant(False))
            with tf.control_dependencies([computed]):
                count = self._read(self.alpha_update_count) + 1
                assigns = [self.alpha_update_count.assign(count),
                           self.alpha.assign(self._schedule.alpha_after_tf(count)),
                           self.last_alpha_update_step.assign(step)]
            with tf.control_dependencies(assigns):
                return tf.constant(True)

        return tf.cond(fire, fire_fn, lambda: tf.constant(False))

    def _step_or_global_step(self, step):
        if step is not None:
            return step
        global_step = self._global_step
        if global_step is None and _in_graph_mode():
            global_step = tf.compat.v1.train.get_global_step()
        if global_step is None:
            raise ValueError("no step: pass step= or give the op a global_step")
        return global_step

    def update(self, step=None) -> tf.Tensor:
        """Runs one scheduled update with TF ops at `step` (default: the global step).

        Works eagerly, inside tf.function and under jit_compile (factors by the compressor's TF
        path). Acts for update options 0 and 2; returns a bool tensor: whether it fired.
        """
        self._require_built()
        if self._spec.update_option not in (UPDATE_TF, UPDATE_BOTH):
            return tf.constant(False)
        return self._conditional_update(self._step_or_global_step(step))

    def get_update_op(self):
        """Graph mode: the update op built with the op. Eagerly or in tf.function: runs
        `update()` with the global step and returns its result."""
        if _in_graph_mode():
            return self.update_op
        return self.update()

    @staticmethod
    def all_update_op(update_ops_list, scope="default_scope"):
        """Groups update ops (graph mode); eagerly returns None."""
        ops_list = [op for op in update_ops_list if op is not None]
        if tf.executing_eagerly() and not tf.inside_function():
            return None
        with tf.name_scope(_module_name(_scope_name(scope))):
            with tf.control_dependencies(ops_list):
                return tf.no_op(name="update_all_compression_ops")

    # --- Python updates (update_option 1 and 2) ------------------------------------------
    def _build_graph_python_ops(self):
        """Placeholders and assign ops for Python updates in a graph, built once."""
        with tf.compat.v1.name_scope("python_update"):
            placeholders = [tf.compat.v1.placeholder(spec.dtype, spec.shape, name=spec.name)
                            for spec in self._factor_specs]
            assign_factors = tf.group(*self._assign_factors(placeholders))
            compute_and_assign = (tf.group(*self._assign_factors(self._compute_factors_tf()))
                                  if self._spec.use_tpu else None)
            step = tf.compat.v1.placeholder(tf.int64, [], name="step")
            count = self._read(self.alpha_update_count) + 1
            fire = tf.group(self.alpha_update_count.assign(count),
                            self.alpha.assign(self._schedule.alpha_after_tf(count)),
                            self.last_alpha_update_step.assign(step))
            state = [self._read(self.last_alpha_update_step)]
        return dict(placeholders=placeholders, assign_factors=assign_factors,
                    compute_and_assign=compute_and_assign, step=step, fire=fire, state=state)

    def run_update_step(self, session=None, step_number=None) -> bool:
        """Runs one scheduled update in Python (NumPy factors; TF ones when use_tpu).

        Args:
          session: a tf.compat.v1.Session for graph mode (default: the default session); None
            eagerly.
          step_number: the step; default the global step's value (with
            run_update_interval_check 0: step 1, as graph_compression).

        Returns whether it fired. Runs for update options 0, 1 and 2 (not 3); the graph never
        grows (the ops it runs were built with the op).
        """
        self._require_built()
        if self._spec.update_option == UPDATE_NONE:
            return False
        if tf.inside_function():
            raise RuntimeError("run_update_step is the Python path and cannot run inside "
                               "tf.function: use update(step) (update_option 0)")
        graph_mode = not tf.executing_eagerly()
        if graph_mode and session is None:
            session = tf.compat.v1.get_default_session()
            if session is None:
                raise ValueError("run_update_step in graph mode needs a session")
        if graph_mode and self._graph_python_ops is None:
            raise ValueError("this op was built eagerly: call run_update_step eagerly")
        if step_number is None:
            if self._spec.run_update_interval_check == 0:
                step_number = 1
            else:
                step = self._step_or_global_step(None)
                step_number = session.run(step) if graph_mode else step
        step_number = int(np.asarray(step_number))
        if graph_mode:
            ops = self._graph_python_ops
            (last,) = session.run(ops["state"])
        else:
            last = int(self.last_alpha_update_step.numpy())
        if not self._schedule.should_fire(step_number, int(last)):
            return False
        if last < 0:
            self._python_compute_factors(session if graph_mode else None)
        if graph_mode:
            session.run(ops["fire"], {ops["step"]: step_number})
        else:
            count = int(self.alpha_update_count.numpy()) + 1
            self.alpha_update_count.assign(count)
            self.alpha.assign(self._schedule.alpha_after(count))
            self.last_alpha_update_step.assign(step_number)
        return True

    def _python_compute_factors(self, session) -> None:
        if session is None:  # eager
            if self._spec.use_tpu:
                self._assign_factors(self._compute_factors_tf())
                return
            a = np.asarray(self._read(self.a_matrix_tfvar))
            values = self.matrix_compressor.static_matrix_compressor(a)
            self._assign_factors([np.asarray(v).astype(spec.dtype.as_numpy_dtype)
                                  for v, spec in zip(values, self._factor_specs)])
            return
        ops = self._graph_python_ops
        if ops["compute_and_assign"] is not None:
            session.run(ops["compute_and_assign"])
            return
        a = session.run(self.a_matrix_tfvar)
        values = self.matrix_compressor.static_matrix_compressor(np.asarray(a))
        session.run(ops["assign_factors"], {
            ph: np.asarray(v).astype(spec.dtype.as_numpy_dtype)
            for ph, v, spec in zip(ops["placeholders"], values, self._factor_specs)})

    def run_update_step_keras(self, step_number) -> bool:
        """graph_compression's Keras spelling of `run_update_step(step_number=...)`."""
        return self.run_update_step(step_number=step_number)

    # --- summaries -----------------------------------------------------------------------
    def add_compression_summaries(self, step=None):
        """alpha, last update step, factor norms and reconstruction error as tf.summary
        scalars: tf.compat.v1 summaries in a graph; under a TF2 default writer otherwise."""
        self._require_built()
        return summaries.write_compression_summaries(self, step=step)


class SimhashCompressionOp(CompressionOp):
    """Simhash op: weight alpha·A + (1 − alpha)·R·S·diag(D); factors signs and scales."""

    expected_compressor = SimhashMatrixCompressor


class KMeansCompressionOp(CompressionOp):
    """k-means op: weight alpha·A + (1 − alpha)·codebook[codes]; b = codebook, c = codes."""

    expected_compressor = KmeansMatrixCompressor


class DLCompressionOp(CompressionOp):
    """Dictionary-learning op: weight alpha·A + (1 − alpha)·B·D with sparse B.

    Extra attributes: b_matrix_indices_tfvar, b_matrix_values_tfvar (the sparse codes);
    c_matrix_tfvar is the dictionary.
    """

    expected_compressor = DLMatrixCompressor

    def _create_state(self, a_shape, a_dtype) -> None:
        super()._create_state(a_shape, a_dtype)
        self.b_matrix_indices_tfvar, self.b_matrix_values_tfvar, self.c_matrix_tfvar = (
            self.factor_variables)
        self.b_matrix_tfvar = self.b_matrix_values_tfvar


def op_class_for(compressor) -> type:
    """The CompressionOp subclass that matches a compressor."""
    for op_class in (SimhashCompressionOp, KMeansCompressionOp, DLCompressionOp):
        if isinstance(compressor, op_class.expected_compressor):
            return op_class
    return CompressionOp


class ApplyCompression(tf.Module):
    """Applies one compression spec to several weights, each with its own op and schedule.

    Args:
      scope: name scope of the combined update op.
      compression_spec: op hparams (copied; validated as in CompressionOp).
      compressor: a MatrixCompressorInterface.
      global_step: step variable/tensor for updates that are not given a step.
      variable_factory: passed to every CompressionOp.

    `apply_compression(w, scope)` returns the weight to use; calling it again with the same
    variable returns a fresh weight tensor from the existing op (so eager code and retraced
    functions can call it every step). `uncompressed_size`, `compressed_size` (and `_bits`) are
    summed over the ops; `compression_ratio` is their bit ratio.
    """

    compression_op_class = None  # None: chosen from the compressor (see op_class_for)

    def __init__(self, scope, compression_spec, compressor, global_step=None,
                 variable_factory=None):
        super().__init__(name=_module_name(_scope_name(scope)))
        self._scope = _scope_name(scope)
        self._compression_op_spec = compression_spec.copy()
        validate_spec(self._compression_op_spec)
        self._global_step = global_step
        self._matrix_compressor = compressor
        self._variable_factory = variable_factory
        self._compression_ops = []
        self._update_ops = []
        self._all_update_op = None

    def _new_op(self, scope) -> CompressionOp:
        op_class = self.compression_op_class or op_class_for(self._matrix_compressor)
        return op_class(scope=scope, spec=self._compression_op_spec,
                        global_step=self._global_step, variable_factory=self._variable_factory)

    def find_compression_op(self, a_matrix_tfvar) -> Optional[CompressionOp]:
        """The op that compresses this very variable object, if any."""
        for op in self._compression_ops:
            if op.a_matrix_tfvar is a_matrix_tfvar:
                return op
        return None

    def apply_compression(self, a_matrix_tfvar, scope="default_scope") -> tf.Tensor:
        """The compressed weight to use instead of `a_matrix_tfvar` (see class doc)."""
        existing = self.find_compression_op(a_matrix_tfvar)
        if existing is not None:
            return existing.final_op if _in_graph_mode() and existing.final_op is not None \
                else existing.get_weight()
        op = self._new_op(scope)
        weight, update_op = op.get_apply_compression_op(a_matrix_tfvar, self._matrix_compressor,
                                                        scope=scope)
        self._compression_ops.append(op)
        self._update_ops.append(update_op)
        return weight

    # --- sizes ---------------------------------------------------------------------------
    @property
    def uncompressed_size(self) -> int:
        return sum(op.uncompressed_size for op in self._compression_ops)

    @property
    def compressed_size(self) -> int:
        return sum(op.compressed_size for op in self._compression_ops)

    @property
    def uncompressed_bits(self) -> int:
        return sum(op.uncompressed_bits for op in self._compression_ops)

    @property
    def compressed_bits(self) -> int:
        return sum(op.compressed_bits for op in self._compression_ops)

    @property
    def compression_ratio(self) -> float:
        bits = self.compressed_bits
        return self.uncompressed_bits / bits if bits else 0.0

    # --- updates -------------------------------------------------------------------------
    def all_update_op(self):
        """Graph mode: one op running every weight's TF update (a no-op for update options 1
        and 3). Inside tf.function: the same, built now. Eagerly: runs them now; None."""
        if _in_graph_mode():
            ops_list = [op.update_op for op in self._compression_ops]
        else:
            ops_list = [op.update() for op in self._compression_ops]
        self._all_update_op = CompressionOp.all_update_op(ops_list, self._scope)
        return self._all_update_op

    def update(self, step=None) -> List[tf.Tensor]:
        """Every op's `update(step)` (TF ops; eager, tf.function, XLA); the fired flags."""
        return [op.update(step) for op in self._compression_ops]

    def run_update_step(self, session=None, step_number=None) -> List[bool]:
        """Every op's Python `run_update_step`; the fired flags."""
        return [op.run_update_step(session=session, step_number=step_number)
                for op in self._compression_ops]

    def add_compression_summaries(self, step=None) -> list:
        """Every op's summaries (see CompressionOp.add_compression_summaries)."""
        return [op.add_compression_summaries(step=step) for op in self._compression_ops]

    # --- accessors -----------------------------------------------------------------------
    def get_last_compression_op(self) -> CompressionOp:
        return self._compression_ops[-1]

    def get_compression_ops(self) -> List[CompressionOp]:
        return list(self._compression_ops)

    def get_spec(self) -> HParams:
        return self._compression_op_spec

    def get_operator_hparam(self, hparam: str):
        return self._compression_op_spec.get(hparam)

    def get_matrix_compressor(self) -> MatrixCompressorInterface:
        return self._matrix_compressor
