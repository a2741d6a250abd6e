"""The per-weight state of a compression op, all tf.Variables, and the one firing step.

For one compressed weight: alpha, the last firing step (−1 before the first firing), the number
of firings, the factor variables and the number of skipped updates (firings the schedule called
for whose factors were not finite, see `updates`). Every update engine fires through
`WeightState.fire` and skips through `WeightState.skip`, so what each does is written once.
"""

from typing import Callable, List, Optional, Sequence

import tensorflow as tf

from tf_matcomp import schedule as schedule_lib
from tf_matcomp.compressors.base import FactorSpec

# f(name, initial_value, dtype, trainable) -> variable (e.g. a Keras layer's add_weight).
VariableFactory = Callable[..., tf.Variable]


def layer_variable_factory(layer) -> VariableFactory:
    """A VariableFactory creating each variable with `layer.add_weight` (a Keras layer), so the
    layer trains, saves and restores the op's state."""

    def make(name, initial_value, dtype, trainable):
        initial = tf.convert_to_tensor(initial_value, dtype)
        return layer.add_weight(
            name=name,
            shape=tuple(initial.shape),
            dtype=tf.as_dtype(dtype).name,
            initializer=lambda shape, dtype=None: initial,
            trainable=trainable,
        )

    return make


def read(variable) -> tf.Tensor:
    """The value of a variable (or tensor) as a tensor."""
    return tf.convert_to_tensor(variable)


class WeightState:
    """alpha, last_alpha_update_step, alpha_update_count, the factors, skipped_update_count
    and, for a method whose factors are recomputed on its own schedule, last_recompression_step
    (created in that order).

    Args:
      factor_specs: the factors' names, shapes, dtypes and trainability.
      schedule: the firing rule and alpha staircase.
      variable_factory: creates each variable; default tf.Variable.
      recompression_schedule: the method's own firing rule (`recompression_schedule()` of its
        compressor), or None.
    """

    def __init__(
        self,
        factor_specs: Sequence[FactorSpec],
        schedule: schedule_lib.AlphaSchedule,
        variable_factory: Optional[VariableFactory] = None,
        recompression_schedule: Optional[schedule_lib.AlphaSchedule] = None,
    ):
        self.factor_specs = tuple(factor_specs)
        self.schedule = schedule
        self._variable_factory = variable_factory
        self.alpha = self._make("alpha", 1.0, tf.float32, False)
        self.last_alpha_update_step = self._make(
            "last_alpha_update_step", tf.constant(-1, tf.int64), tf.int64, False
        )
        self.alpha_update_count = self._make(
            "alpha_update_count", tf.constant(0, tf.int64), tf.int64, False
        )
        self.factor_variables = [
            self._make(spec.name, tf.zeros(spec.shape, spec.dtype), spec.dtype, spec.trainable)
            for spec in self.factor_specs
        ]
        # Created last, so the variables before it keep their positions in a layer's weights.
        self.skipped_update_count = self._make(
            "skipped_update_count", tf.constant(0, tf.int64), tf.int64, False
        )
        self.recompression_schedule = recompression_schedule
        self.last_recompression_step = None
        if recompression_schedule is not None:
            self.last_recompression_step = self._make(
                "last_recompression_step", tf.constant(-1, tf.int64), tf.int64, False
            )

    @property
    def variables(self) -> list:
        """Every state variable: alpha, the counters and the factors."""
        counters = (
            [self.last_recompression_step] if self.last_recompression_step is not None else []
        )
        return (
            [
                self.alpha,
                self.last_alpha_update_step,
                self.alpha_update_count,
                self.skipped_update_count,
            ]
            + counters
            + list(self.factor_variables)
        )

    def _make(self, name: str, initial_value, dtype: tf.DType, trainable: bool):
        if self._variable_factory is not None:
            return self._variable_factory(
                name=name, initial_value=initial_value, dtype=dtype, trainable=trainable
            )
        return tf.Variable(initial_value, name=name, dtype=dtype, trainable=trainable)

    def factors(self) -> List[tf.Tensor]:
        """The current factor values."""
        return [read(v) for v in self.factor_variables]

    def assign_factors(self, values) -> list:
        """Assigns `values` (cast to each factor's dtype); the assign ops."""
        return [
            variable.assign(tf.cast(value, spec.dtype))
            for variable, value, spec in zip(self.factor_variables, values, self.factor_specs)
        ]

    def fire(self, step) -> list:
        """One firing at `step`: the count goes up by one, alpha to its staircase value for
        that count, the last firing step to `step`. Returns the assign ops (run eagerly when
        called eagerly)."""
        count = read(self.alpha_update_count) + 1
        return [
            self.alpha_update_count.assign(count),
            self.alpha.assign(self.schedule.alpha_after_tf(count)),
            self.last_alpha_update_step.assign(tf.cast(step, tf.int64)),
        ]

    def recompressed(self, step) -> tf.Tensor:
        """Records a recompression at `step` (the factors assigned by the caller); the assign."""
        return self.last_recompression_step.assign(tf.cast(step, tf.int64))

    def skip(self):
        """One skipped update: skipped_update_count goes up by one and nothing else changes
        (alpha, the firing count, the last firing step and the factors stay), so the schedule
        calls for the update again at the next step. Returns the assign op."""
        return self.skipped_update_count.assign_add(1)
