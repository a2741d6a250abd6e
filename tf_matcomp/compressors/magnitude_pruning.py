"""Gradual magnitude pruning: the sparsity schedule and the block masks of compression_option 8.

graph_compression's option 8 prunes with model_pruning's `Pruning` object; this module is that
part, in TF ops (graph, tf.function, jit_compile) and in NumPy, with the same hparam names.

Schedule. At step g the target sparsity is

    p = clip((g − sparsity_function_begin_step) /
             (sparsity_function_end_step − sparsity_function_begin_step), 0, 1)
    s(g) = target_sparsity + (initial_sparsity − target_sparsity) · (1 − p) ** exponent

(model_pruning's `_setup_sparsity`; its docstring's "num_steps … step/(num_steps − 1)" formula
is not what it computes, this is). The mask is recomputed when g lies in [begin_pruning_step,
end_pruning_step] (end −1: no end) and at least pruning_frequency steps have passed since the
last mask update: the package's one firing rule (`schedule.AlphaSchedule`), last update −1
before the first.

Mask. |W| is pooled over block_height × block_width blocks (−1: the whole dimension; AVG or MAX,
edge blocks over their cells only, as model_pruning's SAME-padded `tf.nn.pool`); of the G
blocks the round(G · (1 − s)) with the largest pooled magnitude are kept (round half to even)
and every cell of the others is pruned.

Deviations from model_pruning, each a fix:
  * ties are broken by position (the earlier block is kept), not by a random shuffle, so a mask
    is reproducible and the TF and NumPy paths agree bit for bit; s(g) and the kept count are
    computed in float64 (model_pruning: float32);
  * the last mask update step starts at −1, as the compression schedule's (model_pruning starts
    it at 0, so with begin_pruning_step < pruning_frequency the first update came late);
  * bad hparams raise ValueError naming them (model_pruning accepted e.g. an exponent of −1, a
    pooling name only failed when the graph was built, and block_height/width 0);
  * the pruning-only hparams its weight pruning never read — threshold_decay, nbins,
    gradient_decay_rate — are accepted and unused, as there; gradient-based `prune_option`s and
    the per-weight `weight_sparsity_map` / `block_dims_map` are not implemented and are refused.
"""

import dataclasses
import math
from typing import Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import schedule as schedule_lib

# graph_compression's pruning hparams (model_pruning's defaults), part of every op spec.
DEFAULT_PRUNING_HPARAMS = dict(
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
)
# The pruning hparams option 8 reads.
PRUNING_HPARAMS = tuple(DEFAULT_PRUNING_HPARAMS)
POOLING_FUNCTIONS = ("AVG", "MAX")
WHOLE_DIMENSION = -1


def _require_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return int(value)


def _require_fraction(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class SparsitySchedule:
    """When the mask is recomputed and at what sparsity (see the module docstring)."""

    begin_step: int = 0
    end_step: int = schedule_lib.NEVER_STOP
    frequency: int = 10
    initial_sparsity: float = 0.0
    target_sparsity: float = 0.5
    function_begin_step: int = 0
    function_end_step: int = 100
    exponent: float = 3.0

    def __post_init__(self) -> None:
        begin = _require_int(self.begin_step, "begin_pruning_step")
        end = _require_int(self.end_step, "end_pruning_step")
        if begin < 0:
            raise ValueError(f"begin_pruning_step must be >= 0, got {begin}")
        if end != schedule_lib.NEVER_STOP and end <= begin:
            raise ValueError(
                f"end_pruning_step must be > begin_pruning_step ({begin}) or -1 (prune until "
                f"training stops), got {end}"
            )
        if _require_int(self.frequency, "pruning_frequency") < 1:
            raise ValueError(f"pruning_frequency must be >= 1, got {self.frequency}")
        _require_fraction(self.initial_sparsity, "initial_sparsity")
        _require_fraction(self.target_sparsity, "target_sparsity")
        function_begin = _require_int(self.function_begin_step, "sparsity_function_begin_step")
        function_end = _require_int(self.function_end_step, "sparsity_function_end_step")
        if function_begin < 0:
            raise ValueError(f"sparsity_function_begin_step must be >= 0, got {function_begin}")
        if function_end <= function_begin:
            raise ValueError(
                f"sparsity_function_end_step must be > sparsity_function_begin_step "
                f"({function_begin}), got {function_end}"
            )
        exponent = self.exponent
        if (
            isinstance(exponent, bool)
            or not isinstance(exponent, (int, float))
            or not math.isfinite(exponent)
            or exponent <= 0
        ):
            raise ValueError(f"sparsity_function_exponent must be a number > 0, got {exponent!r}")

    @classmethod
    def from_spec(cls, spec) -> "SparsitySchedule":
        """Reads the pruning schedule's hparams (names as graph_compression's)."""
        return cls(
            begin_step=spec.begin_pruning_step,
            end_step=spec.end_pruning_step,
            frequency=spec.pruning_frequency,
            initial_sparsity=spec.initial_sparsity,
            target_sparsity=spec.target_sparsity,
            function_begin_step=spec.sparsity_function_begin_step,
            function_end_step=spec.sparsity_function_end_step,
            exponent=float(spec.sparsity_function_exponent),
        )

    @property
    def firing(self) -> schedule_lib.AlphaSchedule:
        """The mask updates' firing rule (the compression schedule's rule on the pruning steps;
        its alpha staircase is not used)."""
        return schedule_lib.AlphaSchedule(self.begin_step, self.end_step, self.frequency)

    def sparsity(self, step: int) -> float:
        """s(step) in Python (float64)."""
        span = self.function_end_step - self.function_begin_step
        progress = min(1.0, max(0.0, (step - self.function_begin_step) / span))
        return self.target_sparsity + (self.initial_sparsity - self.target_sparsity) * (
            1.0 - progress
        ) ** float(self.exponent)

    def sparsity_tf(self, step) -> tf.Tensor:
        """s(step) in TF ops (float64 scalar; graph, tf.function, XLA)."""
        span = float(self.function_end_step - self.function_begin_step)
        progress = tf.clip_by_value(
            (tf.cast(step, tf.float64) - self.function_begin_step) / span, 0.0, 1.0
        )
        return self.target_sparsity + (self.initial_sparsity - self.target_sparsity) * tf.pow(
            1.0 - progress, float(self.exponent)
        )


def require_pooling_function(value) -> str:
    if value not in POOLING_FUNCTIONS:
        raise ValueError(
            f"block_pooling_function must be one of {POOLING_FUNCTIONS}, got {value!r}"
        )
    return value


def _require_block_dimension(value, name: str) -> int:
    value = _require_int(value, name)
    if value < 1 and value != WHOLE_DIMENSION:
        raise ValueError(f"{name} must be >= 1 or -1 (the whole dimension), got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class BlockMasker:
    """Masks of block_height × block_width blocks, ranked by pooled magnitude."""

    height: int = 1
    width: int = 1
    pooling: str = "AVG"

    def __post_init__(self) -> None:
        _require_block_dimension(self.height, "block_height")
        _require_block_dimension(self.width, "block_width")
        require_pooling_function(self.pooling)

    @classmethod
    def from_spec(cls, spec) -> "BlockMasker":
        return cls(spec.block_height, spec.block_width, spec.block_pooling_function)

    def block_shape(self, m: int, n: int) -> Tuple[int, int]:
        """(block height, block width) for an m×n matrix, −1 resolved to the dimension."""
        height = m if self.height == WHOLE_DIMENSION else min(self.height, m)
        width = n if self.width == WHOLE_DIMENSION else min(self.width, n)
        return height, width

    def _grid(self, m: int, n: int):
        height, width = self.block_shape(m, n)
        return height, width, -(-m // height), -(-n // width)

    def np_mask(self, w: np.ndarray, sparsity: float) -> np.ndarray:
        """The keep mask (bool [m, n]) of `w` at `sparsity`, in NumPy."""
        m, n = w.shape
        height, width, rows, cols = self._grid(m, n)
        padded = np.zeros((rows * height, cols * width), np.float64)
        padded[:m, :n] = np.abs(w)
        blocks = padded.reshape(rows, height, cols, width)
        if self.pooling == "MAX":
            scores = blocks.max(axis=(1, 3))
        else:
            cells = np.zeros_like(padded)
            cells[:m, :n] = 1.0
            scores = blocks.sum(axis=(1, 3)) / cells.reshape(rows, height, cols, width).sum(
                axis=(1, 3)
            )
        kept = int(np.round(scores.size * (1.0 - sparsity)))
        order = np.argsort(-scores.ravel(), kind="stable")
        keep = np.zeros(scores.size, bool)
        keep[order[:kept]] = True
        keep = keep.reshape(rows, cols).repeat(height, 0).repeat(width, 1)
        return keep[:m, :n]

    def tf_mask(self, w: tf.Tensor, sparsity) -> tf.Tensor:
        """The keep mask (bool [m, n]) of `w` at `sparsity` (a float64 tensor), in TF ops."""
        m, n = w.shape.as_list()
        height, width, rows, cols = self._grid(m, n)
        padding = [[0, rows * height - m], [0, cols * width - n]]
        magnitude = tf.pad(tf.abs(tf.cast(w, tf.float64)), padding)
        blocks = tf.reshape(magnitude, [rows, height, cols, width])
        if self.pooling == "MAX":
            scores = tf.reduce_max(blocks, axis=[1, 3])
        else:
            cells = tf.reshape(tf.pad(tf.ones([m, n], tf.float64), padding), blocks.shape)
            scores = tf.reduce_sum(blocks, axis=[1, 3]) / tf.reduce_sum(cells, axis=[1, 3])
        kept = tf.cast(tf.round(rows * cols * (1.0 - tf.cast(sparsity, tf.float64))), tf.int32)
        order = tf.argsort(-tf.reshape(scores, [-1]), stable=True)
        rank = tf.math.invert_permutation(order)
        keep = tf.reshape(rank < kept, [rows, 1, cols, 1])
        keep = tf.reshape(tf.tile(keep, [1, height, 1, width]), [rows * height, cols * width])
        return keep[:m, :n]
