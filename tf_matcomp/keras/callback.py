"""`CompressionCallback`: drives compression updates from the optimizer's step in `model.fit`.

Before each training batch it runs every compressed layer's update at step
`optimizer.iterations` (the step about to run, as graph_compression's update op under the train
op's control dependencies sees the global step), as each layer's spec asks:

  * update_option 0: the TF-op updates (`CompressionOp.update`), in one `tf.function` traced
    once for all layers (in cross-replica context under tf.distribute);
  * update_option 1: the Python updates (`CompressionOp.run_update_step`, NumPy factors);
  * update_option 2: both, in that order (they share the state: a step never fires twice);
  * update_option 3: none.

After each batch and epoch it writes `alpha` (mean over compressed layers) and
`compression_ratio` (uncompressed / compressed size of the compressed layers) into `logs`, so
Keras' progress bar, History and a TensorBoard callback placed after it show them.
"""

import time
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tf_matcomp.keras import compress_model as compress_model_lib

keras = tf.keras


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

    @staticmethod
    def _option(layer) -> int:
        return layer.compression.update_option

    def on_train_begin(self, logs=None):
        self._layers = compress_model_lib.compressed_layers(self.model)
        if not self._layers:
            raise ValueError(
                "CompressionCallback: the model has no CompressedDense or "
                "CompressedConv2D layer (see tf_matcomp.keras.compress_model)"
            )
        tf_layers = [layer for layer in self._layers if self._option(layer) in (0, 2)]

        @tf.function
        def tf_update(step):
            fired = [layer.update(step) for layer in tf_layers]
            return tf.reduce_any(tf.stack(fired)) if fired else tf.constant(False)

        self._tf_update = tf_update

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        start = time.perf_counter()
        before = [layer.compression.last_update_step() for layer in self._layers]
        if any(self._option(layer) in (0, 2) for layer in self._layers):
            self._tf_update(tf.constant(step, tf.int64))
        for layer in self._layers:
            if self._option(layer) in (1, 2):
                layer.compression.op.run_update_step(step_number=step)
        after = [layer.compression.last_update_step() for layer in self._layers]
        if before != after:
            self.update_seconds.append(time.perf_counter() - start)

    def _write_logs(self, logs):
        if logs is not None and self._layers:
            logs["alpha"] = self.mean_alpha()
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
        """Uncompressed / compressed bytes summed over the compressed layers."""
        uncompressed = sum(layer.compression.uncompressed_bytes() for layer in self._layers)
        compressed = sum(layer.compression.compressed_bytes() for layer in self._layers)
        return uncompressed / max(compressed, 1)

    def mean_update_seconds(self) -> Optional[float]:
        """Mean wall time of the update calls in which a layer fired (None if none fired)."""
        return float(np.mean(self.update_seconds)) if self.update_seconds else None
