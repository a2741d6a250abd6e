"""The update engines of a compression op: who decides to fire, and how factors are computed.

All three follow the same rule (`AlphaSchedule.should_fire`), compute the factors at the first
firing from the weight's value then, and fire through `WeightState.fire`:

* `TFOpUpdates` — TF ops (update_option 0 and 2): a `tf.cond` on the schedule; runs in a TF1
  graph, eagerly, inside tf.function and under jit_compile; factors by the compressor's TF path.
* `GraphPythonUpdates` — Python decides, in a TF1 graph with a Session (update_option 1, 2):
  the few ops it runs (placeholders and assigns) are built once, so the graph never grows.
* `EagerPythonUpdates` — Python decides, eagerly.

The Python engines take their factors from the compressor's NumPy path (its TF path when the
spec says use_tpu).
"""

from typing import List

import numpy as np
import tensorflow as tf

from tf_matcomp.compression_op.state import WeightState, read


def read_step(step) -> tf.Tensor:
    """One read of a step variable, tensor or int, as an int64 scalar tensor.

    `tf.cast` of an int64 variable returns the variable itself, so every later use would read
    it again; this reads it once."""
    return tf.cast(read(step), tf.int64)


def tf_factors(compressor, state: WeightState, a_matrix) -> List[tf.Tensor]:
    """The factors of the weight's current value by the compressor's TF path."""
    factors = compressor.tpu_matrix_compressor(read(a_matrix))
    return [tf.cast(f, spec.dtype) for f, spec in zip(factors, state.factor_specs)]


def numpy_factors(compressor, state: WeightState, a_value) -> List[np.ndarray]:
    """The factors of `a_value` by the compressor's NumPy path, at the factors' dtypes."""
    values = compressor.static_matrix_compressor(np.asarray(a_value))
    return [
        np.asarray(v).astype(spec.dtype.as_numpy_dtype)
        for v, spec in zip(values, state.factor_specs)
    ]


class TFOpUpdates:
    """The TF-op update: fires when the schedule says so at a step tensor."""

    def __init__(self, compressor, state: WeightState, a_matrix):
        self._compressor, self._state, self._a_matrix = compressor, state, a_matrix

    def conditional_update(self, step) -> tf.Tensor:
        """Fires when the schedule says so at `step`; returns whether it fired (bool tensor).

        `step` (a variable, tensor or int) is read once: the firing decision and the recorded
        last firing step use the same value, however the session orders this update against
        other writers of the step (the optimizer's global-step increment)."""
        state = self._state
        step = read_step(step)
        last = read(state.last_alpha_update_step)

        def compute_factors():
            with tf.control_dependencies(
                state.assign_factors(tf_factors(self._compressor, state, self._a_matrix))
            ):
                return tf.constant(True)

        def fire():
            computed = tf.cond(last < 0, compute_factors, lambda: tf.constant(False))
            with tf.control_dependencies([computed]):
                assigns = state.fire(step)
            with tf.control_dependencies(assigns):
                return tf.constant(True)

        return tf.cond(state.schedule.should_fire_tf(step, last), fire, lambda: tf.constant(False))


class _PythonUpdates:
    """The Python update: the schedule checked in Python, factors computed at first firing."""

    def __init__(self, compressor, state: WeightState, a_matrix, use_tf_path: bool):
        self._compressor, self._state, self._a_matrix = compressor, state, a_matrix
        self._use_tf_path = use_tf_path

    def run(self, step_number: int, session=None) -> bool:
        """Fires when the schedule says so at `step_number`; returns whether it fired.
        `session` runs the graph engine's ops (None eagerly)."""
        last = self._last_update_step(session)
        if not self._state.schedule.should_fire(step_number, last):
            return False
        if last < 0:
            self._compute_factors(session)
        self._fire(step_number, session)
        return True

    def _last_update_step(self, session) -> int:
        raise NotImplementedError

    def _compute_factors(self, session) -> None:
        raise NotImplementedError

    def _fire(self, step_number: int, session) -> None:
        raise NotImplementedError


class EagerPythonUpdates(_PythonUpdates):
    """Python updates of an op built eagerly (or for tf.function)."""

    def _last_update_step(self, session) -> int:
        return int(self._state.last_alpha_update_step.numpy())

    def _compute_factors(self, session) -> None:
        if self._use_tf_path:
            values = tf_factors(self._compressor, self._state, self._a_matrix)
        else:
            values = numpy_factors(self._compressor, self._state, read(self._a_matrix))
        self._state.assign_factors(values)

    def _fire(self, step_number: int, session) -> None:
        self._state.fire(step_number)


class GraphPythonUpdates(_PythonUpdates):
    """Python updates of an op built in a TF1 graph: runs ops built once, with the op."""

    def __init__(self, compressor, state: WeightState, a_matrix, use_tf_path: bool):
        super().__init__(compressor, state, a_matrix, use_tf_path)
        with tf.compat.v1.name_scope("python_update"):
            self._placeholders = [
                tf.compat.v1.placeholder(spec.dtype, spec.shape, name=spec.name)
                for spec in state.factor_specs
            ]
            self._assign_factors = tf.group(*state.assign_factors(self._placeholders))
            self._compute_and_assign = (
                tf.group(*state.assign_factors(tf_factors(compressor, state, a_matrix)))
                if use_tf_path
                else None
            )
            self._step = tf.compat.v1.placeholder(tf.int64, [], name="step")
            self._fire_op = tf.group(*state.fire(self._step))
            self._last = read(state.last_alpha_update_step)

    def _last_update_step(self, session) -> int:
        return int(session.run(self._last))

    def _compute_factors(self, session) -> None:
        if self._compute_and_assign is not None:
            session.run(self._compute_and_assign)
            return
        values = numpy_factors(self._compressor, self._state, session.run(self._a_matrix))
        session.run(self._assign_factors, dict(zip(self._placeholders, values)))

    def _fire(self, step_number: int, session) -> None:
        session.run(self._fire_op, {self._step: step_number})
