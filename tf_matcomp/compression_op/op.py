"""`CompressionOp`: one weight's compression — its state, its blended weight, its updates."""

import contextlib
import math
import re
import warnings
from typing import Iterator, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_matcomp import schedule as schedule_lib
from tf_matcomp import summaries
from tf_matcomp.compression_op import spec as spec_lib
from tf_matcomp.compression_op import updates as updates_lib
from tf_matcomp.compression_op.blend import BlendedWeight
from tf_matcomp.compression_op.state import WeightState, layer_variable_factory, read
from tf_matcomp.compressors import registry
from tf_matcomp.compressors.base import MatrixCompressorInterface
from tf_matcomp.compressors.form import matmul_last_axis
from tf_matcomp.compressors.method import DEFAULT_FACTOR_ATTRIBUTES, factor_index
from tf_matcomp.hparams import HParams


def scope_name(scope) -> str:
    """The name of a scope given as a string or a tf.compat.v1 VariableScope."""
    name = getattr(scope, "name", scope)
    return str(name) if name else "default_scope"


def module_name(scope_name_: str) -> str:
    """A valid tf.Module name for a scope name."""
    name = re.sub(r"\W", "_", scope_name_)
    return name if re.match(r"^[A-Za-z_]", name) else f"op_{name}"


def in_graph_mode() -> bool:
    """Building a TF1-style graph (not eager, not inside a tf.function)."""
    return not tf.executing_eagerly() and not tf.inside_function()


def _base_dtype(value) -> tf.DType:
    return tf.as_dtype(value.dtype).base_dtype


def _value(variable, session=None) -> np.ndarray:
    """A variable's value: read eagerly, or by `session` in a graph."""
    return np.asarray(read(variable) if session is None else session.run(variable))


def skip_reason(op: "CompressionOp", session=None) -> str:
    """Why the op's last update was skipped, read from its state (a skip changes none of it)."""
    a_value = _value(op.a_matrix_tfvar, session)
    non_finite = int(a_value.size - np.count_nonzero(np.isfinite(a_value)))
    # A recompressing method (option 8) recomputes its factors from the weight at later firings
    # too, so a non-finite weight can be the reason then.
    weight_read = op.last_recompression_step is not None and non_finite
    if int(_value(op.last_alpha_update_step, session)) >= 0 and not weight_read:
        return "its factors are not finite (NaN or Inf, e.g. from training)"
    if non_finite:
        return f"the weight has {non_finite} non-finite values (NaN or Inf)"
    return (
        "the factors computed from it were not finite (values the method cannot compress, "
        "e.g. k-means beyond |a| = 1e150 or simhash scales that overflow)"
    )


@contextlib.contextmanager
def warn_on_skipped_updates(
    ops: Sequence["CompressionOp"], step: int, session=None
) -> Iterator[None]:
    """Warns (`SkippedUpdateWarning`, naming the weight and why) once for each built op in `ops`
    whose skipped_update_count rose during the block — the updates at `step` it wraps skipped
    (see `updates`). Runs eagerly, or with `session` in a graph; a tf.function's updates cannot
    warn themselves, so wrap the call of the function."""
    ops = [op for op in ops if op.skipped_update_count is not None]
    before = [int(_value(op.skipped_update_count, session)) for op in ops]
    yield
    for op, count in zip(ops, before):
        skipped = int(_value(op.skipped_update_count, session))
        if skipped == count:
            continue
        weight = getattr(op.a_matrix_tfvar, "path", None) or op.a_matrix_tfvar.name
        warnings.warn(
            f"compression {op.scope_name!r} (weight {weight!r}): the update at step "
            f"{step} was skipped because {skip_reason(op, session)}; "
            f"alpha stays at {float(_value(op.alpha, session)):g} and the update is tried again "
            f"at the next step ({skipped} skipped so far). warnings.simplefilter('error', "
            "SkippedUpdateWarning) makes this an error.",
            updates_lib.SkippedUpdateWarning,
            stacklevel=3,
        )


class CompressionOpInterface:
    """Interface of a compression op (graph_compression's CompressionOpInterface)."""

    def __init__(self, scope="default_scope", spec=None, global_step=None):
        del scope, spec, global_step

    def get_apply_compression_op(self, a_matrix_tfvar, matrix_compressor, scope="default_scope"):
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
    c_matrix_tfvar (and d_matrix_tfvar for option 9: the factors the method names so, None
    where absent; see its registry entry),
    factor_variables, last_alpha_update_step, alpha_update_count, skipped_update_count
    (updates skipped for non-finite factors, see `tf_matcomp.compression_op.updates`),
    last_recompression_step (methods whose factors are recomputed on their own schedule, e.g.
    option 8's mask updates; else None), state_variables, final_op (graph mode), update_op, uncompressed_size, compressed_size,
    uncompressed_bits, compressed_bits, compression_ratio.
    """

    # The compressor class this op takes (subclasses for one method narrow it).
    expected_compressor = MatrixCompressorInterface

    def __init__(self, scope="default_scope", spec=None, global_step=None, variable_factory=None):
        CompressionOpInterface.__init__(self, scope, spec, global_step)
        self._scope_name = scope_name(scope)
        tf.Module.__init__(self, name=module_name(self._scope_name))
        self._spec = (spec if spec is not None else self.get_default_hparams()).copy()
        self._schedule = spec_lib.validate_spec(self._spec)
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
        self.skipped_update_count = None
        self.last_recompression_step = None
        self.final_op = None
        self.update_op = None
        self.uncompressed_size = 0
        self.compressed_size = 0
        self.uncompressed_bits = 0
        self.compressed_bits = 0
        self._state: Optional[WeightState] = None
        self._form = None
        self._blended: Optional[BlendedWeight] = None
        self._tf_updates: Optional[updates_lib.TFOpUpdates] = None
        self._python_updates = None
        self._step_read: Optional[tf.Tensor] = None  # graph mode: the TF update's step read

    # --- spec ----------------------------------------------------------------------------
    @staticmethod
    def get_default_hparams() -> HParams:
        """The op spec with graph_compression's defaults.

        name: spec name. alpha_decrement_value (0.01): alpha's step down per firing, in (0, 1].
        begin_compression_step (0) / end_compression_step (−1 = never stop): the steps between
        which updates fire (both inclusive). compression_frequency (10): steps between firings.
        use_tpu (False): compute factors only with TF ops. compression_option (0): the method,
        see `tf_matcomp.compressors.registry` (0/1 low-rank, 2 simhash, 3 dictionary
        learning, 4 k-means, 8 pruning + k-means, 9 input/output, 10 block-diagonal, 12 mixed-block). rank (7;
        graph_compression's README says 100): low-rank, simhash and dictionary learning read
        it as a compression factor ×100
        (k = ceil(min(m,n)·100/rank) for low-rank), k-means as the number of centroids — see
        `tf_matcomp.compressors`. update_option (0): 0 TF ops, 1 Python, 2 both, 3 none.
        run_update_interval_check (1): with 0, a Python update without step_number uses step 1
        (as graph_compression). block_size (1): k-means block length. pruning_fraction (0.0):
        k-means pre-pruning. add_summary (True): in a graph, add tf.compat.v1 summaries when a
        weight is compressed. compress_input / input_block_size / input_compression_factor and
        compress_output / output_block_size / output_compression_factor: option 9 (see
        `tf_matcomp.compressors.input_output`). The pruning keys (begin/end_pruning_step,
        pruning_frequency, initial/target_sparsity, sparsity_function_begin/end_step/exponent,
        block_height/width, block_pooling_function, ...) are option 8's
        (`tf_matcomp.compressors.magnitude_pruning`).
        """
        return spec_lib.default_op_hparams()

    def get_spec(self) -> HParams:
        return self._spec

    @property
    def schedule(self) -> schedule_lib.AlphaSchedule:
        return self._schedule

    @property
    def _last_alpha_update_step(self):
        """graph_compression's name of `last_alpha_update_step` (read by its tests)."""
        return self.last_alpha_update_step

    @property
    def scope_name(self) -> str:
        return self._scope_name

    @property
    def factor_specs(self) -> tuple:
        """The FactorSpec (name, shape, dtype, trainable) of each factor variable."""
        return self._state.factor_specs if self._state is not None else ()

    @property
    def state_variables(self) -> list:
        """Every state variable (not A): alpha, the counters and the factors."""
        self._require_built()
        return self._state.variables

    @property
    def form(self):
        """The method's CompressedForm of this weight (shapes of the factors, Â, products)."""
        self._require_built()
        return self._form

    def print_hparams(self) -> None:
        tf.get_logger().info(self._spec.to_json())

    # --- building ------------------------------------------------------------------------
    def _create_state(self, a_shape, a_dtype) -> None:
        self._state = WeightState(
            self.matrix_compressor.factor_specs(a_shape, a_dtype),
            self._schedule,
            self._variable_factory,
            self.matrix_compressor.recompression_schedule(),
        )
        self.alpha = self._state.alpha
        self.last_alpha_update_step = self._state.last_alpha_update_step
        self.alpha_update_count = self._state.alpha_update_count
        self.skipped_update_count = self._state.skipped_update_count
        self.last_recompression_step = self._state.last_recompression_step
        self.factor_variables = self._state.factor_variables
        method = registry.method_for_compressor(self.matrix_compressor)
        attributes = method.factor_attributes if method else DEFAULT_FACTOR_ATTRIBUTES
        names = self.matrix_compressor.factor_names
        for attribute, factor in attributes.items():
            index = factor_index(factor, names, len(self.factor_variables))
            setattr(self, attribute, None if index is None else self.factor_variables[index])

    def _require_global_step(self) -> None:
        if self._global_step is None:
            self._global_step = tf.compat.v1.train.get_global_step()
        if self._global_step is None:
            raise ValueError(
                "update_option 0 or 2 in a graph needs a global_step: pass "
                "global_step= or create one with "
                "tf.compat.v1.train.get_or_create_global_step()"
            )

    def get_apply_compression_op_keras(self, a_matrix_tfvar, matrix_compressor, layer):
        """`get_apply_compression_op` with the state created as `layer`'s weights (Keras)."""
        self._variable_factory = layer_variable_factory(layer)
        return self.get_apply_compression_op(a_matrix_tfvar, matrix_compressor, scope=layer.name)

    def get_apply_compression_op(self, a_matrix_tfvar, matrix_compressor, scope="default_scope"):
        """Creates the state for `a_matrix_tfvar`; returns [compressed weight, update op].

        The update op is a graph op in graph mode (a no-op for update options 1 and 3); eagerly
        and inside tf.function it is None — use `update(step)` there.

        Raises:
          ValueError: the weight is not a fully known 2-D matrix, the compressor cannot take
            its shape (e.g. k-means block_size not dividing the columns), or update option 0/2
            in a graph has no global step.
        """
        if not isinstance(matrix_compressor, self.expected_compressor):
            raise ValueError(
                f"{type(self).__name__} needs a {self.expected_compressor.__name__},"
                f" got {type(matrix_compressor).__name__}"
            )
        if self.a_matrix_tfvar is not None:
            raise ValueError(
                "this CompressionOp already compresses a weight; create one op "
                "per weight (ApplyCompression does)"
            )
        a_shape = tf.TensorShape(a_matrix_tfvar.shape)
        matrix_compressor.validate_shape(a_shape)
        a_dtype = _base_dtype(a_matrix_tfvar)
        if not a_dtype.is_floating:
            raise ValueError(f"the weight to compress must be floating point, got {a_dtype.name}")
        self.matrix_compressor = matrix_compressor
        self._scope_name = scope_name(scope) if scope != "default_scope" else self._scope_name
        graph_mode = in_graph_mode()
        if graph_mode and self._spec.update_option in spec_lib.TF_UPDATE_OPTIONS:
            self._require_global_step()
        if graph_mode:
            with tf.compat.v1.variable_scope(
                scope if scope != "default_scope" else self._scope_name
            ):
                self._create_state(a_shape, a_dtype)
        else:
            with tf.init_scope(), tf.name_scope(self._scope_name):
                self._create_state(a_shape, a_dtype)
        self.a_matrix_tfvar = a_matrix_tfvar
        self._form = matrix_compressor.form(a_shape, a_dtype)
        self._blended = BlendedWeight(matrix_compressor, self._form, self._state, a_matrix_tfvar)
        self._tf_updates = updates_lib.TFOpUpdates(matrix_compressor, self._state, a_matrix_tfvar)
        self._set_sizes(a_shape, a_dtype)
        if not graph_mode:
            self._python_updates = updates_lib.EagerPythonUpdates(
                matrix_compressor, self._state, a_matrix_tfvar, self._spec.use_tpu
            )
            return [self.get_weight(), None]
        with tf.compat.v1.name_scope(f"{self._scope_name}_compression/"):
            if self._spec.update_option in spec_lib.TF_UPDATE_OPTIONS:
                # The update reads the global step once, and the weight (so the loss, the
                # gradients and the optimizer's increment of the step) waits for that read:
                # in one session.run the update sees the step before the increment, whatever
                # the order of the ops the train op groups.
                self._step_read = updates_lib.read_step(self._global_step)
                self.final_op = self.get_weight()
                self.update_op = self._tf_updates.conditional_update(self._step_read)
            else:
                self.final_op = self.get_weight()
                self.update_op = tf.no_op(name="no_tf_update")
            self._python_updates = updates_lib.GraphPythonUpdates(
                matrix_compressor, self._state, a_matrix_tfvar, self._spec.use_tpu
            )
            if self._spec.add_summary:
                self.add_compression_summaries()
        return [self.final_op, self.update_op]

    def _set_sizes(self, a_shape, a_dtype) -> None:
        m, n = a_shape.as_list()
        self.uncompressed_size = m * n
        self.uncompressed_bits = m * n * a_dtype.size * 8
        self.compressed_bits = sum(spec.bits for spec in self._state.factor_specs)
        self.compressed_size = int(math.ceil(self.compressed_bits / (a_dtype.size * 8)))

    def _require_built(self) -> None:
        if self.a_matrix_tfvar is None:
            raise ValueError(
                "call get_apply_compression_op (or ApplyCompression."
                "apply_compression) before using the op"
            )

    # --- the weight ----------------------------------------------------------------------
    def _after_step_read(self):
        """In the graph the op was built in: a control dependency on the TF update's step read
        (see get_apply_compression_op), so whatever is computed from the weight — and the
        optimizer's step increment after it — runs after the update has read the step."""
        ordered = (
            self._step_read is not None
            and in_graph_mode()
            and self._step_read.graph is tf.compat.v1.get_default_graph()
        )
        return tf.control_dependencies([self._step_read] if ordered else [])

    def factors(self) -> List[tf.Tensor]:
        """The current factor values."""
        self._require_built()
        return self._state.factors()

    def get_weight(self) -> tf.Tensor:
        """alpha·A + (1 − alpha)·Â from the current variables (a fresh tensor each call)."""
        self._require_built()
        with self._after_step_read():
            return self._blended.weight()

    def get_compressed_weight(self) -> tf.Tensor:
        """Â alone, from the factors (what the weight is once alpha is 0)."""
        self._require_built()
        return self._blended.compressed()

    def reconstruction_error(self) -> tf.Tensor:
        """‖A − Â‖_F / ‖A‖_F (1 before the first firing, when Â is zero)."""
        self._require_built()
        return self._blended.reconstruction_error()

    @property
    def compression_ratio(self) -> float:
        """uncompressed_bits / compressed_bits."""
        return self.uncompressed_bits / self.compressed_bits if self.compressed_bits else 0.0

    def get_apply_matmul(self, left_operand) -> tf.Tensor:
        """left_operand · Wᵀ (W as [out, in]); Â's part by the method's factored product
        (low-rank: (x·Cᵀ)·Bᵀ, B·C never formed)."""
        self._require_built()
        with self._after_step_read():
            return self._blended.matmul(left_operand)

    def get_apply_matmul_keras(self, inputs, layer=None) -> tf.Tensor:
        """inputs · W for a Keras kernel W [in, out] (graph_compression's Keras spelling; `layer`
        is accepted for compatibility)."""
        del layer
        self._require_built()
        with self._after_step_read():
            return matmul_last_axis(tf.convert_to_tensor(inputs), self._blended.weight())

    def get_apply_embedding_lookup(self, ids) -> tf.Tensor:
        """Rows `ids` of W; low-rank gathers rows of A and B only."""
        self._require_built()
        with self._after_step_read():
            return self._blended.embedding_lookup(ids)

    # --- TF-op updates (update_option 0 and 2) -------------------------------------------
    def _step_or_global_step(self, step):
        if step is not None:
            return step
        global_step = self._global_step
        if global_step is None and in_graph_mode():
            global_step = tf.compat.v1.train.get_global_step()
        if global_step is None:
            raise ValueError("no step: pass step= or give the op a global_step")
        return global_step

    def update(self, step=None) -> tf.Tensor:
        """Runs one scheduled update with TF ops at `step` (default: the global step).

        Works eagerly, inside tf.function and under jit_compile (factors by the compressor's TF
        path). Acts for update options 0 and 2; returns a bool tensor: whether it fired. An
        update with non-finite factors is skipped and counted in skipped_update_count (eagerly
        also a `SkippedUpdateWarning`; see `tf_matcomp.compression_op.updates`).
        """
        self._require_built()
        if self._spec.update_option not in spec_lib.TF_UPDATE_OPTIONS:
            return tf.constant(False)
        step = self._step_or_global_step(step)
        if not tf.executing_eagerly():
            return self._tf_updates.conditional_update(step)
        with warn_on_skipped_updates([self], int(np.asarray(step))):
            return self._tf_updates.conditional_update(step)

    def get_update_op(self):
        """Graph mode: the update op built with the op. Eagerly or in tf.function: runs
        `update()` with the global step and returns its result."""
        if in_graph_mode():
            return self.update_op
        return self.update()

    @staticmethod
    def all_update_op(update_ops_list, scope="default_scope"):
        """Groups update ops (graph mode); eagerly returns None."""
        ops_list = [op for op in update_ops_list if op is not None]
        if tf.executing_eagerly() and not tf.inside_function():
            return None
        with tf.name_scope(module_name(scope_name(scope))):
            with tf.control_dependencies(ops_list):
                return tf.no_op(name="update_all_compression_ops")

    # --- Python updates (update_option 1 and 2) ------------------------------------------
    def run_update_step(self, session=None, step_number=None) -> bool:
        """Runs one scheduled update in Python (NumPy factors; TF ones when use_tpu).

        Args:
          session: a tf.compat.v1.Session for graph mode (default: the default session); None
            eagerly.
          step_number: the step; default the global step's value (with
            run_update_interval_check 0: step 1, as graph_compression).

        Returns whether it fired. Runs for update options 0, 1 and 2 (not 3); the graph never
        grows (the ops it runs were built with the op). An update with non-finite factors is
        skipped, counted in skipped_update_count and warned about (`SkippedUpdateWarning`).
        """
        self._require_built()
        if self._spec.update_option == spec_lib.UPDATE_NONE:
            return False
        if tf.inside_function():
            raise RuntimeError(
                "run_update_step is the Python path and cannot run inside "
                "tf.function: use update(step) (update_option 0)"
            )
        graph_mode = not tf.executing_eagerly()
        if graph_mode and session is None:
            session = tf.compat.v1.get_default_session()
            if session is None:
                raise ValueError("run_update_step in graph mode needs a session")
        if graph_mode != isinstance(self._python_updates, updates_lib.GraphPythonUpdates):
            raise ValueError(
                "run_update_step must run where the op was built: eagerly for an "
                "op built eagerly, with a Session for an op built in a graph"
            )
        if step_number is None:
            if self._spec.run_update_interval_check == 0:
                step_number = 1
            else:
                step = self._step_or_global_step(None)
                step_number = session.run(step) if graph_mode else step
        step_number = int(np.asarray(step_number))
        with warn_on_skipped_updates([self], step_number, session):
            return self._python_updates.run(step_number, session)

    def run_update_step_keras(self, step_number) -> bool:
        """graph_compression's Keras spelling of `run_update_step(step_number=...)`."""
        return self.run_update_step(step_number=step_number)

    # --- summaries -----------------------------------------------------------------------
    def add_compression_summaries(self, step=None):
        """alpha, last update step, factor norms and reconstruction error as tf.summary
        scalars: tf.compat.v1 summaries in a graph; under a TF2 default writer otherwise."""
        self._require_built()
        return summaries.write_compression_summaries(self, step=step)
