"""The update engines of a compression op: who decides to fire, and how factors are computed.

All three follow the same rule (`AlphaSchedule.should_fire`), compute the factors at the first
firing from the weight's value then (see "Recompressing methods" below for the exception), and
fire through `WeightState.fire`:

* `TFOpUpdates` — TF ops (update_option 0 and 2): a `tf.cond` on the schedule; runs in a TF1
  graph, eagerly, inside tf.function and under jit_compile; factors by the compressor's TF path.
* `GraphPythonUpdates` — Python decides, in a TF1 graph with a Session (update_option 1, 2):
  the few ops it runs (placeholders and assigns) are built once, so the graph never grows.
* `EagerPythonUpdates` — Python decides, eagerly.

The Python engines take their factors from the compressor's NumPy path (its TF path when the
spec says use_tpu).

Recompressing methods. A compressor with a `recompression_schedule` (pruning + k-means: its
mask updates) also has its factors recomputed whenever that rule fires, after the compression
schedule's own update at the same step, with the last such step in
`WeightState.last_recompression_step`. For such a method every computation of factors — that
rule's firings and the compression schedule's first firing — starts from the weight the layer
computes with, W = blend(A, factors, alpha), and the step (`tpu_recompress` /
`static_recompress`); a recompression is applied when W and its new factors are finite and
otherwise skipped like a firing (counted, nothing else changes, tried again at the next step).

Non-finite values. XLA cannot raise at run time (under jit_compile the kernels' checks are
gone: k-means of NaN gives a NaN codebook, simhash NaN scales), so no engine relies on the
kernels to refuse them. A firing the schedule calls for is applied only when its factors are
finite: at the first firing the weight must be finite (the factors are then not even computed
otherwise) and so must the factors computed from it; at a later firing the current factors
must be. Otherwise the update is skipped (`WeightState.skip`): skipped_update_count goes up by
one and nothing else changes — the factors are not assigned, alpha does not step toward a zero
(never computed) or non-finite Â, the firing count and the last firing step stay, so the update
is tried again at the next step. Eagerly and from Python the op warns (`SkippedUpdateWarning`,
see `op.warn_on_skipped_updates`); inside a tf.function the count is the record.
"""

from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_matcomp.compression_op.state import WeightState, read


class SkippedUpdateWarning(RuntimeWarning):
    """A compression update the schedule called for was skipped: its factors were not finite."""


def read_step(step) -> tf.Tensor:
    """One read of a step variable, tensor or int, as an int64 scalar tensor.

    `tf.cast` of an int64 variable returns the variable itself, so every later use would read
    it again; this reads it once."""
    return tf.cast(read(step), tf.int64)


def all_finite(values: Sequence[tf.Tensor]) -> tf.Tensor:
    """Whether every floating tensor in `values` is finite (integer ones always are); a bool
    scalar tensor (graph, tf.function, XLA)."""
    checks = [tf.reduce_all(tf.math.is_finite(v)) for v in values if v.dtype.is_floating]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def np_all_finite(values: Sequence[np.ndarray]) -> bool:
    """Whether every floating array in `values` is finite (integer ones always are)."""
    return all(
        np.isfinite(v).all() for v in map(np.asarray, values) if np.issubdtype(v.dtype, np.floating)
    )


def tf_factors(compressor, state: WeightState, a_value) -> List[tf.Tensor]:
    """The factors of `a_value` (the weight, or a read of it) by the compressor's TF path."""
    return _cast_factors(state, compressor.tpu_matrix_compressor(read(a_value)))


def numpy_factors(compressor, state: WeightState, a_value) -> List[np.ndarray]:
    """The factors of `a_value` by the compressor's NumPy path, at the factors' dtypes."""
    return _numpy_at_dtypes(state, compressor.static_matrix_compressor(np.asarray(a_value)))


def _cast_factors(state: WeightState, factors) -> List[tf.Tensor]:
    return [tf.cast(f, spec.dtype) for f, spec in zip(factors, state.factor_specs)]


def _numpy_at_dtypes(state: WeightState, values) -> List[np.ndarray]:
    return [
        np.asarray(v).astype(spec.dtype.as_numpy_dtype)
        for v, spec in zip(values, state.factor_specs)
    ]


def blended_weight(compressor, state: WeightState, a_matrix) -> tf.Tensor:
    """W = alpha·A + (1 − alpha)·Â from the current variables (what the layer computes with)."""
    return compressor.blend(read(a_matrix), state.factors(), read(state.alpha))


class TFOpUpdates:
    """The TF-op update: fires when the schedule says so at a step tensor and the factors are
    finite, else skips; then a recompressing method's own rule (see the module docstring)."""

    def __init__(self, compressor, state: WeightState, a_matrix):
        self._compressor, self._state, self._a_matrix = compressor, state, a_matrix

    def _computed(self, step, on_own_schedule: bool):
        """(factors computed now, whether they may be applied): from A, or from W at `step` for
        a recompressing method; not computed when that input is not finite (the current
        factors are returned, not to be applied)."""
        state = self._state
        if state.recompression_schedule is None:
            source = read(self._a_matrix)
        else:
            source = blended_weight(self._compressor, state, self._a_matrix)

        def computed():
            if state.recompression_schedule is None:
                factors = tf_factors(self._compressor, state, source)
            else:
                factors = _cast_factors(
                    state,
                    self._compressor.tpu_recompress(source, state.factors(), step, on_own_schedule),
                )
            return factors, all_finite(factors)

        return tf.cond(
            all_finite([source]), computed, lambda: (state.factors(), tf.constant(False))
        )

    def _current_factors(self):
        factors = self._state.factors()
        return factors, all_finite(factors)

    def _skip(self):
        with tf.control_dependencies([self._state.skip()]):
            return tf.constant(False)

    def conditional_update(self, step) -> tf.Tensor:
        """Fires when the schedule says so at `step` and the factors are finite; returns whether
        it fired or recompressed (bool tensor). A firing with non-finite factors is skipped
        (counted in skipped_update_count, nothing else changes).

        `step` (a variable, tensor or int) is read once: the firing decision and the recorded
        last firing step use the same value, however the session orders this update against
        other writers of the step (the optimizer's global-step increment)."""
        state = self._state
        step = read_step(step)
        last = read(state.last_alpha_update_step)
        first = last < 0

        def apply(factors):
            def assign():
                with tf.control_dependencies(state.assign_factors(factors)):
                    return tf.constant(True)

            assigned = tf.cond(first, assign, lambda: tf.constant(False))
            with tf.control_dependencies([assigned]):
                assigns = state.fire(step)
            with tf.control_dependencies(assigns):
                return tf.constant(True)

        def fire():
            factors, valid = tf.cond(
                first, lambda: self._computed(step, False), self._current_factors
            )
            return tf.cond(valid, lambda: apply(factors), self._skip)

        fired = tf.cond(state.schedule.should_fire_tf(step, last), fire, lambda: tf.constant(False))
        if state.recompression_schedule is None:
            return fired
        with tf.control_dependencies([fired]):
            return tf.logical_or(fired, self._conditional_recompression(step))

    def _conditional_recompression(self, step) -> tf.Tensor:
        """Recomputes the factors when the method's own rule fires at `step`; whether it did."""
        state = self._state

        def apply(factors):
            with tf.control_dependencies(state.assign_factors(factors)):
                with tf.control_dependencies([state.recompressed(step)]):
                    return tf.constant(True)

        def recompress():
            factors, valid = self._computed(step, True)
            return tf.cond(valid, lambda: apply(factors), self._skip)

        due = state.recompression_schedule.should_fire_tf(step, read(state.last_recompression_step))
        return tf.cond(due, recompress, lambda: tf.constant(False))


class _PythonUpdates:
    """The Python update: the schedule checked in Python, factors computed at first firing;
    a firing whose factors are not finite is skipped; then a recompressing method's own rule
    (see the module docstring)."""

    def __init__(self, compressor, state: WeightState, a_matrix, use_tf_path: bool):
        self._compressor, self._state, self._a_matrix = compressor, state, a_matrix
        self._use_tf_path = use_tf_path

    def run(self, step_number: int, session=None) -> bool:
        """Fires when the schedule says so at `step_number` and the factors are finite, then
        recompresses when the method's own rule says so; returns whether either happened.
        `session` runs the graph engine's ops (None eagerly)."""
        fired = self._run_compression_schedule(step_number, session)
        if self._state.recompression_schedule is None:
            return fired
        return self._run_recompression(step_number, session) or fired

    def _run_compression_schedule(self, step_number: int, session) -> bool:
        last = self._last_update_step(session)
        if not self._state.schedule.should_fire(step_number, last):
            return False
        first = last < 0
        if not first:
            factors = self._current_factors(session)
        elif self._state.recompression_schedule is None:
            factors = self._new_factors(session)
        else:
            factors = self._recompressed_factors(step_number, False, session)
        if factors is None or not np_all_finite(factors):
            self._skip(session)
            return False
        if first:
            self._assign_factors(factors, session)
        self._fire(step_number, session)
        return True

    def _run_recompression(self, step_number: int, session) -> bool:
        last = self._last_recompression_step(session)
        if not self._state.recompression_schedule.should_fire(step_number, last):
            return False
        factors = self._recompressed_factors(step_number, True, session)
        if factors is None or not np_all_finite(factors):
            self._skip(session)
            return False
        self._assign_factors(factors, session)
        self._record_recompression(step_number, session)
        return True

    def _new_factors(self, session) -> Optional[list]:
        """The factors of the weight's current value; None (not computed) when the weight is
        not finite."""
        a_value = self._weight_value(session)
        if not np_all_finite([a_value]):
            return None
        if self._use_tf_path:
            return self._tf_path_factors(a_value, session)
        return numpy_factors(self._compressor, self._state, a_value)

    def _recompressed_factors(self, step_number: int, on_own_schedule: bool, session):
        """The recompressing method's factors of W at `step_number`; None (not computed) when
        W is not finite."""
        weight = self._blended_value(session)
        if not np_all_finite([weight]):
            return None
        current = self._current_factors(session)
        if self._use_tf_path:
            return self._tf_path_recompress(weight, current, step_number, on_own_schedule, session)
        return _numpy_at_dtypes(
            self._state,
            self._compressor.static_recompress(weight, current, step_number, on_own_schedule),
        )

    def _last_update_step(self, session) -> int:
        raise NotImplementedError

    def _last_recompression_step(self, session) -> int:
        raise NotImplementedError

    def _weight_value(self, session) -> np.ndarray:
        raise NotImplementedError

    def _blended_value(self, session) -> np.ndarray:
        raise NotImplementedError

    def _tf_path_factors(self, a_value: np.ndarray, session) -> list:
        raise NotImplementedError

    def _tf_path_recompress(self, weight, factors, step_number, on_own_schedule, session) -> list:
        raise NotImplementedError

    def _current_factors(self, session) -> list:
        raise NotImplementedError

    def _assign_factors(self, values: list, session) -> None:
        raise NotImplementedError

    def _fire(self, step_number: int, session) -> None:
        raise NotImplementedError

    def _record_recompression(self, step_number: int, session) -> None:
        raise NotImplementedError

    def _skip(self, session) -> None:
        raise NotImplementedError


class EagerPythonUpdates(_PythonUpdates):
    """Python updates of an op built eagerly (or for tf.function)."""

    def _last_update_step(self, session) -> int:
        return int(self._state.last_alpha_update_step.numpy())

    def _last_recompression_step(self, session) -> int:
        return int(self._state.last_recompression_step.numpy())

    def _weight_value(self, session) -> np.ndarray:
        return read(self._a_matrix).numpy()

    def _blended_value(self, session) -> np.ndarray:
        return blended_weight(self._compressor, self._state, self._a_matrix).numpy()

    def _tf_path_factors(self, a_value, session) -> list:
        return tf_factors(self._compressor, self._state, tf.constant(a_value))

    def _tf_path_recompress(self, weight, factors, step_number, on_own_schedule, session) -> list:
        recompressed = self._compressor.tpu_recompress(
            tf.constant(weight), factors, tf.constant(step_number, tf.int64), on_own_schedule
        )
        return [np.asarray(f) for f in _cast_factors(self._state, recompressed)]

    def _current_factors(self, session) -> list:
        return self._state.factors()

    def _assign_factors(self, values, session) -> None:
        self._state.assign_factors(values)

    def _fire(self, step_number: int, session) -> None:
        self._state.fire(step_number)

    def _record_recompression(self, step_number: int, session) -> None:
        self._state.recompressed(step_number)

    def _skip(self, session) -> None:
        self._state.skip()


class GraphPythonUpdates(_PythonUpdates):
    """Python updates of an op built in a TF1 graph: runs ops built once, with the op."""

    def __init__(self, compressor, state: WeightState, a_matrix, use_tf_path: bool):
        super().__init__(compressor, state, a_matrix, use_tf_path)
        with tf.compat.v1.name_scope("python_update"):
            self._placeholders = [
                tf.compat.v1.placeholder(spec.dtype, spec.shape, name=spec.name)
                for spec in state.factor_specs
            ]
            self._assign_factors_op = tf.group(*state.assign_factors(self._placeholders))
            weight_dtype = tf.as_dtype(a_matrix.dtype).base_dtype
            if use_tf_path:  # the TF path's factors of a fed value of the weight
                self._a_placeholder = tf.compat.v1.placeholder(
                    weight_dtype, a_matrix.shape, name="a_matrix"
                )
                self._tf_path_factors_op = tf_factors(compressor, state, self._a_placeholder)
            self._step = tf.compat.v1.placeholder(tf.int64, [], name="step")
            self._fire_op = tf.group(*state.fire(self._step))
            self._skip_op = state.skip()
            self._last = read(state.last_alpha_update_step)
            self._a_read = read(a_matrix)
            self._factor_reads = state.factors()
            if state.recompression_schedule is not None:
                self._build_recompression_ops(weight_dtype, a_matrix.shape)

    def _build_recompression_ops(self, weight_dtype, shape) -> None:
        state = self._state
        self._blended_read = blended_weight(self._compressor, state, self._a_matrix)
        self._last_recompression = read(state.last_recompression_step)
        self._record_op = state.recompressed(self._step)
        if self._use_tf_path:  # the TF path's factors of a fed W, fed factors and the step
            self._w_placeholder = tf.compat.v1.placeholder(weight_dtype, shape, name="weight")
            self._recompress_ops = {
                own: _cast_factors(
                    state,
                    self._compressor.tpu_recompress(
                        self._w_placeholder, self._placeholders, self._step, own
                    ),
                )
                for own in (False, True)
            }

    def _last_update_step(self, session) -> int:
        return int(session.run(self._last))

    def _last_recompression_step(self, session) -> int:
        return int(session.run(self._last_recompression))

    def _weight_value(self, session) -> np.ndarray:
        return session.run(self._a_read)

    def _blended_value(self, session) -> np.ndarray:
        return session.run(self._blended_read)

    def _tf_path_factors(self, a_value, session) -> list:
        return session.run(self._tf_path_factors_op, {self._a_placeholder: a_value})

    def _tf_path_recompress(self, weight, factors, step_number, on_own_schedule, session) -> list:
        feed = {self._w_placeholder: weight, self._step: step_number}
        feed.update(zip(self._placeholders, factors))
        return session.run(self._recompress_ops[on_own_schedule], feed)

    def _current_factors(self, session) -> list:
        return session.run(self._factor_reads)

    def _assign_factors(self, values, session) -> None:
        session.run(self._assign_factors_op, dict(zip(self._placeholders, values)))

    def _fire(self, step_number: int, session) -> None:
        session.run(self._fire_op, {self._step: step_number})

    def _record_recompression(self, step_number: int, session) -> None:
        session.run(self._record_op, {self._step: step_number})

    def _skip(self, session) -> None:
        session.run(self._skip_op)
