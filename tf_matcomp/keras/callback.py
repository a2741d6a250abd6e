"""`CompressionCallback`: drives compression updates from the optimizer's step in `model.fit`.

Before each training batch in which some layer's schedule fires, it runs every compressed
layer's update at step `optimizer.iterations` (the step about to run, as graph_compression's
update op under the train op's control dependencies sees the global step), as each layer's spec
asks (the other batches cost one read of the step and a Python check of the schedules):

  * update_option 0: the TF-op updates (`CompressionOp.update`), in one `tf.function` traced
    once for all layers (in cross-replica context under tf.distribute);
  * update_option 1: the Python updates (`CompressionOp.run_update_step`, NumPy factors);
  * update_option 2: both, in that order (they share the state: a step never fires twice);
  * update_option 3: none.

It reports `alpha` (mean over compressed layers) and `compression_ratio` (`report.
compression_ratio`: the model's dense bytes over its deployable bytes, the figure the demo
table and `tf-matcomp` print; measured again after each update that fired, since option 8's
deployed bytes follow its mask) as a metric of the model during `fit`, so the progress bar,
History and a TensorBoard callback show them whatever the callback order; it also writes them
into `logs` after each batch and epoch.
"""

import time
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_matcomp import compression_op
from tf_matcomp.keras import compress_model as compress_model_lib
from tf_matcomp.keras import report

keras = tf.keras


class _CompressionMetrics(keras.metrics.Metric):
    """`alpha` and `compression_ratio` read from the layers' state (no state of its own)."""

    def __init__(self, layers, ratio: float):
        super().__init__(name="compression")
        object.__setattr__(self, "_compressed", tuple(layers))
        # A variable: option 8's deployed bytes follow its mask, so the ratio moves in fit.
        self.ratio = self.add_variable(shape=(), initializer="zeros", name="ratio")
        self.ratio.assign(ratio)

    def update_state(self, *args, **kwargs):
        """Nothing to accumulate: the values are read from the layers."""

    def reset_state(self):
        """Nothing to reset."""

    def result(self):
        alphas = [tf.cast(layer.alpha, tf.float32) for layer in self._compressed]
        return {
            "alpha": tf.reduce_mean(tf.stack(alphas)),
            "compression_ratio": tf.convert_to_tensor(self.ratio),
        }


class CompressionCallback(keras.callbacks.Callback):
    """Runs the compression updates of a model's compressed layers during `fit`.

    Attributes:
      update_seconds: wall time of each update call in which at least one layer fired.
    """

    def __init__(self):
        super().__init__()
        self.update_seconds: List[float] = []
        self._layers: list = []
        self._tf_update = None
        self._metrics: Optional[_CompressionMetrics] = None
        self._ratio = 0.0
        # Per layer, its firing state as of the latest read (`_read_state`).
        self._last_steps: List[Tuple[int, Optional[int]]] = []
        self._alphas: List[float] = []

    @staticmethod
    def _option(layer) -> int:
        return layer.compression.update_option

    def on_train_begin(self, logs=None):
        self._layers = compress_model_lib.compressed_layers(self.model)
        if not self._layers:
            raise ValueError(
                "CompressionCallback: the model has no CompressedDense, CompressedConv2D or "
                "other compressed layer (see tf_matcomp.keras.compress_model)"
            )
        for layer in self._layers:
            layer.driven_by_callback = True
        self._ratio = report.compression_ratio(self.model)
        self._metrics = _CompressionMetrics(self._layers, self._ratio)
        model_metrics = getattr(self.model, "_metrics", None)
        if isinstance(model_metrics, list):  # Keras 3: the train step reports it
            model_metrics.append(self._metrics)
        tf_layers = [layer for layer in self._layers if self._option(layer) in (0, 2)]

        @tf.function
        def tf_update(step):
            fired = [layer.update(step) for layer in tf_layers]
            return tf.reduce_any(tf.stack(fired)) if fired else tf.constant(False)

        self._tf_update = tf_update
        self._read_state()

    def on_train_end(self, logs=None):
        model_metrics = getattr(self.model, "_metrics", None)
        if isinstance(model_metrics, list) and self._metrics in model_metrics:
            model_metrics.remove(self._metrics)
        for layer in self._layers:
            layer.driven_by_callback = False

    def on_epoch_begin(self, epoch, logs=None):
        self._read_state()

    def _read_state(self) -> None:
        """Reads each layer's last firing step and alpha into Python (see `_due`)."""
        self._last_steps = [layer.compression.firing_state() for layer in self._layers]
        self._alphas = [float(layer.alpha) for layer in self._layers]

    def _due(self, step: int) -> bool:
        """Whether some layer's schedule fires at `step`, from the last firing steps read at
        the epoch's start or after the latest update: the state changes only by updates, so
        the steps between firings cost no variable read and no update call."""
        return any(
            self._option(layer) != 3 and layer.compression.due(step, last)
            for layer, last in zip(self._layers, self._last_steps)
        )

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if not self._due(step):
            return
        start = time.perf_counter()
        before = self._last_steps
        if any(self._option(layer) in (0, 2) for layer in self._layers):
            # The tf.function cannot warn: a skipped update (non-finite factors) warns here.
            ops = [layer.compression.op for layer in self._layers]
            with compression_op.warn_on_skipped_updates(ops, step):
                self._tf_update(tf.constant(step, tf.int64))
        for layer in self._layers:
            if self._option(layer) in (1, 2):
                layer.compression.op.run_update_step(step_number=step)
        self._read_state()
        if before != self._last_steps:
            self.update_seconds.append(time.perf_counter() - start)
            self._ratio = report.compression_ratio(self.model)
            self._metrics.ratio.assign(self._ratio)

    def _write_logs(self, logs):
        if logs is not None and self._layers:
            logs["alpha"] = float(np.mean(self._alphas))
            logs["compression_ratio"] = self.compression_ratio()

    def on_train_batch_end(self, batch, logs=None):
        self._write_logs(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._write_logs(logs)

    # -- measurements
    def alphas(self) -> List[float]:
        return [float(layer.alpha) for layer in self._layers]

    def mean_alpha(self) -> float:
        return float(np.mean(self.alphas()))

    def min_alpha(self) -> float:
        return float(np.min(self.alphas()))

    def compression_ratio(self) -> float:
        """The model's dense bytes over its deployable bytes (`report.compression_ratio`)."""
        return self._ratio

    def mean_update_seconds(self) -> Optional[float]:
        """Mean wall time of the update calls in which a layer fired (None if none fired)."""
        return float(np.mean(self.update_seconds)) if self.update_seconds else None
