"""The bridge between a Keras layer's 2-D kernel and `tf_matcomp.compression_op.CompressionOp`.

One CompressionOp per layer (its own alpha, last update step, firing count and factors: no
state shared between layers), whose variables are created by the layer's `add_weight` (the op's
`variable_factory`), so Keras trains the float factors and `.keras` files, checkpoints and
tf.distribute see every piece of state. The schedule, the compressors and the blend are the
op's; this module only parses specs, builds the op, and names its factors as its form does.
"""

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import apply, compression_op
from tf_matcomp import compression_wrapper
from tf_matcomp.compression_op import state
from tf_matcomp.hparams import HParams


def parse_spec(spec) -> HParams:
    """An HParams (copied), a "k=v,..." string, a dict or None on top of the op-spec defaults.

    Raises:
      ValueError: an unknown key, a value of the wrong type, or a value that breaks a rule of
        `compression_op.validate_spec` (each names the hparam).
    """
    parsed = apply.make_spec(spec)
    compression_op.validate_spec(parsed)
    return parsed


def spec_to_config(spec: HParams) -> dict:
    """The spec as a JSON-able dict (for `get_config`)."""
    return dict(spec.values())


class KernelCompression(tf.Module):
    """A CompressionOp on `kernel` (2-D) whose state variables belong to `layer`.

    A tf.Module, so TF's object graph follows layer → compression → op → state variables:
    `tf.train.Checkpoint(model=...)` saves and restores them (Keras' own files reach them
    through the layer's weights).

    Raises:
      ValueError: the compressor cannot take the kernel's shape (e.g. block_size not dividing
        its columns), named with the layer.
    """

    def __init__(self, layer, kernel, spec: HParams):
        super().__init__()
        self.spec = spec
        self.update_option = int(spec.update_option)

        compressor = compression_wrapper.make_compressor(spec)
        self.op = compression_op.op_class_for(compressor)(
            scope=layer.name, spec=spec, variable_factory=state.layer_variable_factory(layer)
        )
        try:
            self.op.get_apply_compression_op(kernel, compressor, scope=layer.name)
        except ValueError as error:
            raise ValueError(f"layer {layer.name!r}: {error}") from error

    def weight(self) -> tf.Tensor:
        """alpha·A + (1 − alpha)·Â: the op's own weight (native kernels, composites under XLA)."""
        return self.op.get_weight()

    def alpha(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.op.alpha)

    def dense_matrix(self) -> tf.Tensor:
        """A, the dense matrix (what the weight is while alpha is 1)."""
        return state.read(self.op.a_matrix_tfvar)

    def factors(self) -> list:
        """The current factor values (Â is the form's function of them)."""
        return self.op.factors()

    def last_update_step(self) -> int:
        """The last step at which an update fired: alpha's, or a recompression of the factors
        (option 8's mask updates); −1 before any."""
        steps = [self.op.last_alpha_update_step, self.op.last_recompression_step]
        return max(int(np.asarray(step)) for step in steps if step is not None)

    def firing_state(self) -> Tuple[int, Optional[int]]:
        """(alpha's last firing step, the last recompression step or None when the method has
        no schedule of its own): what `due` decides from."""
        recompression = self.op.last_recompression_step
        return (
            int(np.asarray(self.op.last_alpha_update_step)),
            None if recompression is None else int(np.asarray(recompression)),
        )

    def due(self, step: int, firing_state: Tuple[int, Optional[int]]) -> bool:
        """Whether an update fires at `step` after `firing_state()`: alpha's schedule, or the
        method's own recompression schedule (option 8's mask updates), each from its own last
        step, as the update engines decide (compression_op/updates.py)."""
        alpha_last, recompression_last = firing_state
        if self.op.schedule.should_fire(step, alpha_last):
            return True
        rule = self.op.matrix_compressor.recompression_schedule()
        return recompression_last is not None and rule.should_fire(step, recompression_last)

    def update(self, step) -> tf.Tensor:
        """The op's TF-op update at `step` (acts for update options 0 and 2)."""
        return self.op.update(tf.cast(step, tf.int64))

    def run_update(self, step: int) -> bool:
        """Eagerly, the update(s) the spec's update_option asks for at `step`."""
        fired = False
        if self.update_option in (0, 2):
            fired = bool(self.update(tf.constant(step, tf.int64)))
        if self.update_option in (1, 2):
            fired = self.op.run_update_step(step_number=step) or fired
        return fired

    def state_variables(self) -> list:
        """A, alpha, the counters and the factors: what strip_compression drops."""
        return [self.op.a_matrix_tfvar] + self.op.state_variables

    def uncompressed_bytes(self) -> int:
        return self.op.uncompressed_bits // 8

    def compressed_bytes(self) -> int:
        """Bytes of the deployed form of the current factors (option 8: they follow the mask)."""
        return self.deployed_form()[0].nbytes()

    def compressed_form(self):
        """(CompressedForm, {stored array name: NumPy value}) of the current factors."""
        form = self.op.form
        names = [name for name, _, _ in form.variables()]
        return form, {name: np.asarray(v) for name, v in zip(names, self.op.factor_variables)}

    def deployed_form(self):
        """(CompressedForm, {stored array name: NumPy value}) strip_compression stores for the
        current factors (`CompressedForm.deployed_form`)."""
        return self.op.form.deployed_form(self.compressed_form()[1])
