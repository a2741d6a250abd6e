"""The alpha schedule: when an update fires and what alpha becomes, in Python and in TF ops.

Per compressed weight the state is the last firing step L (−1 before the first firing) and the
number of firings c. An update called at step g fires when

    g >= begin_compression_step
    and (end_compression_step == -1 or g <= end_compression_step)
    and L + compression_frequency <= g

(the rule of graph_compression's TF-op path; so with begin 0 and frequency 10 the first firing
is at step 9, then 19, 29, ...). A firing sets L = g and c = c + 1, and

    alpha = max(1 − c · alpha_decrement_value, 0)

computed in float64 from the count, so the staircase is exact (1, 0.99, 0.98, ... and exactly 0
after ceil(1 / alpha_decrement_value) firings) instead of drifting by float32 rounding. The first
firing (L < 0) also computes the compressed factors from the current weight.

A firing whose factors are not finite (see `tf_matcomp.compression_op.updates`) is skipped, not
fired: L, c and alpha stay, so alpha never steps toward a zero (never computed) or non-finite Â,
and since L is unchanged the rule calls for the update again at the next step (within [begin,
end]); the first firing that is applied computes the factors then.
"""

import dataclasses
import math

import tensorflow as tf

NEVER_STOP = -1
# 1 − c·d below this counts as 0 (float64 rounding of c·d, e.g. 3 · (1/3)).
_ZERO_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class AlphaSchedule:
    """The firing rule and alpha staircase of one spec; validated at construction."""

    begin_step: int = 0
    end_step: int = NEVER_STOP
    frequency: int = 10
    alpha_decrement: float = 0.01

    def __post_init__(self) -> None:
        _require_int(self.begin_step, "begin_compression_step")
        _require_int(self.end_step, "end_compression_step")
        _require_int(self.frequency, "compression_frequency")
        if self.begin_step < 0:
            raise ValueError(f"begin_compression_step must be >= 0, got {self.begin_step}")
        if self.end_step != NEVER_STOP and self.end_step < self.begin_step:
            raise ValueError(
                f"end_compression_step must be >= begin_compression_step ({self.begin_step}) "
                f"or -1 (never stop), got {self.end_step}"
            )
        if self.frequency < 1:
            raise ValueError(f"compression_frequency must be >= 1, got {self.frequency}")
        decrement = self.alpha_decrement
        if (
            isinstance(decrement, bool)
            or not isinstance(decrement, (int, float))
            or not math.isfinite(decrement)
            or not 0 < decrement <= 1
        ):
            raise ValueError(f"alpha_decrement_value must be in (0, 1], got {decrement!r}")

    @classmethod
    def from_spec(cls, spec) -> "AlphaSchedule":
        """Reads begin/end_compression_step, compression_frequency, alpha_decrement_value."""
        return cls(
            begin_step=spec.begin_compression_step,
            end_step=spec.end_compression_step,
            frequency=spec.compression_frequency,
            alpha_decrement=float(spec.alpha_decrement_value),
        )

    # --- Python ---------------------------------------------------------------------------
    def in_range(self, step: int) -> bool:
        """Whether `step` lies in [begin, end] (end −1: no upper bound)."""
        return step >= self.begin_step and (self.end_step == NEVER_STOP or step <= self.end_step)

    def should_fire(self, step: int, last_update_step: int) -> bool:
        """The firing rule for a Python int step and last firing step."""
        return self.in_range(step) and last_update_step + self.frequency <= step

    def alpha_after(self, num_updates: int) -> float:
        """alpha after `num_updates` firings: max(1 − num_updates · decrement, 0)."""
        value = 1.0 - num_updates * self.alpha_decrement
        return 0.0 if value <= _ZERO_TOLERANCE else value

    def firing_steps(self, steps) -> list:
        """The steps among the increasing `steps` at which updates fire (for docs and tests)."""
        last, fired = -1, []
        for step in steps:
            if self.should_fire(step, last):
                fired.append(step)
                last = step
        return fired

    # --- TF ops ---------------------------------------------------------------------------
    def should_fire_tf(self, step: tf.Tensor, last_update_step: tf.Tensor) -> tf.Tensor:
        """The firing rule in TF ops on int64 scalars (graph, tf.function, XLA)."""
        step = tf.cast(step, tf.int64)
        last_update_step = tf.cast(last_update_step, tf.int64)
        fire = tf.logical_and(step >= self.begin_step, last_update_step + self.frequency <= step)
        if self.end_step != NEVER_STOP:
            fire = tf.logical_and(fire, step <= self.end_step)
        return fire

    def alpha_after_tf(self, num_updates: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """alpha after `num_updates` firings, computed in float64 and cast to `dtype`."""
        value = 1.0 - tf.cast(num_updates, tf.float64) * self.alpha_decrement
        value = tf.where(value <= _ZERO_TOLERANCE, tf.zeros_like(value), value)
        return tf.cast(value, dtype)


def _require_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
