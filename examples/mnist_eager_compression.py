"""Eager-mode MNIST-style example with compressed Keras layers (graph_compression's
mnist_eager_mode example, ported).

A custom training loop (GradientTape, no `model.fit`) trains either a two-layer MLP of
`CompressedDense` layers or LeNet-5 with `CompressedConv2D` layers on the handwritten digits
that ship with scikit-learn (8×8 images; no download), and calls `run_alpha_update(step)` on
the model after every step, as the original does. The update runs as a `tf.function`
(update_option=0) or in Python (update_option=1).

    python examples/mnist_eager_compression.py --model mlp
    python examples/mnist_eager_compression.py --model lenet5 --hparams "rank=200"
    python examples/mnist_eager_compression.py --quick
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from tf_matcomp import keras as matcomp_keras  # noqa: E402

DEFAULT_HPARAMS = (
    "name=mnist_compression,rank=400,begin_compression_step=50,"
    "compression_frequency=10,alpha_decrement_value=0.1"
)
QUICK_HPARAMS = (
    "name=mnist_compression,rank=400,begin_compression_step=15,"
    "compression_frequency=5,alpha_decrement_value=0.25"
)


class CompressedModelV2(tf.keras.Model):
    """A two-layer model made of CompressedDense layers."""

    def __init__(self, num_hidden_nodes: int, num_classes: int, spec: str):
        super().__init__()
        self.layer_1 = matcomp_keras.CompressedDense(num_hidden_nodes, spec=spec, activation="relu")
        self.layer_2 = matcomp_keras.CompressedDense(num_classes, spec=spec)
        self.softmax = tf.keras.layers.Softmax()

    def call(self, inputs):
        return self.softmax(self.layer_2(self.layer_1(inputs)))

    def run_alpha_update(self, step_number: int) -> None:
        """Runs the compression update of every compressed layer at `step_number`."""
        run_alpha_update(self, step_number)


def compressed_lenet5(input_shape, num_classes: int, spec: str) -> tf.keras.Model:
    """LeNet-5 with compressed convolutions (kernels reshaped to [kh·kw·cin, filters])."""
    inputs = tf.keras.Input(shape=input_shape)
    x = matcomp_keras.CompressedConv2D(6, 5, padding="same", activation="relu", spec=spec)(inputs)
    x = tf.keras.layers.MaxPooling2D(2, padding="same")(x)
    x = matcomp_keras.CompressedConv2D(16, 5, padding="same", activation="relu", spec=spec)(x)
    x = tf.keras.layers.MaxPooling2D(2, padding="same")(x)
    x = matcomp_keras.CompressedConv2D(120, 2, padding="same", activation="relu", spec=spec)(x)
    x = tf.keras.layers.Flatten()(x)
    x = matcomp_keras.CompressedDense(84, activation="relu", spec=spec)(x)
    logits = tf.keras.layers.Dense(num_classes)(x)
    outputs = tf.keras.layers.Softmax()(logits)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    return model


def run_alpha_update(model: tf.keras.Model, step_number: int) -> None:
    """Updates every compressed layer of a model (works for both models above)."""
    for layer in matcomp_keras.compressed_layers(model):
        layer.run_alpha_update(step_number)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=("mlp", "lenet5"), default="mlp")
    parser.add_argument(
        "--hparams", default=None, help=f"compression hparams (default '{DEFAULT_HPARAMS}')"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="4 epochs, fast schedule")
    args = parser.parse_args(argv)
    hparams = args.hparams or (QUICK_HPARAMS if args.quick else DEFAULT_HPARAMS)
    epochs = 4 if args.quick else args.epochs

    tf.keras.utils.set_random_seed(0)
    digits = load_digits()
    x_train = (digits.images / 16.0).astype(np.float32)
    y_train = digits.target.astype(np.int64)
    if args.model == "mlp":
        x_train = x_train.reshape(len(x_train), -1)
        model = CompressedModelV2(64, 10, hparams)
    else:
        x_train = x_train[..., None]
        model = compressed_lenet5(x_train.shape[1:], 10, hparams)
    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_dataset = train_dataset.shuffle(buffer_size=1024, seed=0).batch(64)

    optimizer = tf.keras.optimizers.Adam(learning_rate=3e-3)
    loss = tf.keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss_value = loss(y, model(x, training=True))
        grads = tape.gradient(loss_value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss_value

    step_number = 0
    for epoch in range(epochs):
        for x, y in train_dataset:
            loss_value = train_step(x, y)
            run_alpha_update(model, step_number)
            step_number += 1
        alphas = [float(layer.alpha) for layer in matcomp_keras.compressed_layers(model)]
        print(
            f"Training loss at epoch {epoch} is {float(loss_value):.4f}; alpha "
            + " ".join(f"{a:.2f}" for a in alphas),
            flush=True,
        )
    accuracy = float(np.mean(np.argmax(model(x_train).numpy(), -1) == y_train))
    print(f"train accuracy {accuracy:.4f} after {step_number} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
