"""TF1-style training with compression, in the shape of graph_compression's cifar10 example.

A graph with a global step, conv layers, two fully-connected layers whose weights go through
`compression_obj.apply_compression(weights, scope)`, and a train op that runs
`compression_obj.all_update_op()` under `tf.control_dependencies` (update_option=0), or calls
`compression_obj.run_update_step(session, step)` from Python (update_option=1). Only the
imports differ from the graph_compression original.

It runs offline on CIFAR-10-shaped synthetic data (32×32×3 images: a fixed random template
per class plus noise), so the loss falls quickly and visibly.

    python examples/cifar10_compression_train.py \
        --compression_hparams="name=cifar10_compression,rank=400,compression_frequency=10"
    python examples/cifar10_compression_train.py --quick
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from tf_matcomp import compression_op as compression  # noqa: E402
from tf_matcomp import compression_wrapper  # noqa: E402

IMAGE_SIZE = 32
NUM_CLASSES = 10
DEFAULT_HPARAMS = (
    "name=cifar10_compression,rank=200,begin_compression_step=100,"
    "compression_frequency=10,alpha_decrement_value=0.05"
)
QUICK_HPARAMS = (
    "name=cifar10_compression,rank=200,begin_compression_step=5,"
    "compression_frequency=5,alpha_decrement_value=0.25"
)


def synthetic_batches(batch_size: int, seed: int):
    """An endless stream of (images, labels): class template + Gaussian noise."""
    rng = np.random.default_rng(seed)
    templates = rng.standard_normal((NUM_CLASSES, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    while True:
        labels = rng.integers(0, NUM_CLASSES, batch_size)
        noise = rng.standard_normal((batch_size, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
        yield templates[labels] + noise, labels.astype(np.int64)


def create_compressor(hparams: str = "", global_step=None):
    """Creates an ApplyCompression object to use during the inference step."""
    compression_hparams = compression.CompressionOp.get_default_hparams().parse(hparams)
    return compression_wrapper.get_apply_compression(compression_hparams, global_step=global_step)


def _variable(name, shape, stddev):
    return tf.get_variable(
        name, shape, dtype=tf.float32, initializer=tf.truncated_normal_initializer(stddev=stddev)
    )


def inference(images, compression_obj, batch_size: int):
    """conv1 → pool → conv2 → pool → local3 (compressed) → local4 (compressed) → logits."""
    with tf.variable_scope("conv1") as scope:
        kernel = _variable("weights", [5, 5, 3, 32], 5e-2)
        biases = tf.get_variable("biases", [32], initializer=tf.constant_initializer(0.0))
        conv = tf.nn.conv2d(images, kernel, [1, 1, 1, 1], padding="SAME")
        conv1 = tf.nn.relu(tf.nn.bias_add(conv, biases), name=scope.name)
    pool1 = tf.nn.max_pool(conv1, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
    with tf.variable_scope("conv2") as scope:
        kernel = _variable("weights", [5, 5, 32, 32], 5e-2)
        biases = tf.get_variable("biases", [32], initializer=tf.constant_initializer(0.1))
        conv = tf.nn.conv2d(pool1, kernel, [1, 1, 1, 1], padding="SAME")
        conv2 = tf.nn.relu(tf.nn.bias_add(conv, biases), name=scope.name)
    pool2 = tf.nn.max_pool(conv2, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
    with tf.variable_scope("local3") as scope:
        reshape = tf.reshape(pool2, [batch_size, -1])
        dim = reshape.get_shape()[1]
        weights = _variable("weights", [dim, 384], 0.04)
        biases = tf.get_variable("biases", [384], initializer=tf.constant_initializer(0.1))
        local3 = tf.nn.relu(
            tf.matmul(reshape, compression_obj.apply_compression(weights, scope)) + biases,
            name=scope.name,
        )
    with tf.variable_scope("local4") as scope:
        weights = _variable("weights", [384, 192], 0.04)
        biases = tf.get_variable("biases", [192], initializer=tf.constant_initializer(0.1))
        local4 = tf.nn.relu(
            tf.matmul(local3, compression_obj.apply_compression(weights, scope)) + biases,
            name=scope.name,
        )
    with tf.variable_scope("softmax_linear") as scope:
        weights = _variable("weights", [192, NUM_CLASSES], 1 / 192.0)
        biases = tf.get_variable("biases", [NUM_CLASSES], initializer=tf.constant_initializer(0.0))
        return tf.add(tf.matmul(local4, weights), biases, name=scope.name)


def loss(logits, labels):
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
        name="cross_entropy",
    )


def train_op(total_loss, global_step, compression_obj, learning_rate: float):
    """The gradient step; with update_option 0 (or 2) the compression updates run first, in
    the same session run, so every weight's update reads the global step before it advances
    (the original grouped them unordered with the gradient step: a race on the step)."""
    opt = tf.train.GradientDescentOptimizer(learning_rate)
    updates = []
    if compression_obj.get_spec().update_option in (0, 2):
        updates.append(compression_obj.all_update_op())
    with tf.control_dependencies(updates):
        return opt.minimize(total_loss, global_step=global_step, name="train")


def train(args) -> float:
    """Builds the graph and trains; returns the final loss (the first and last are printed)."""
    with tf.Graph().as_default():
        global_step = tf.train.get_or_create_global_step()
        images = tf.placeholder(tf.float32, [args.batch_size, IMAGE_SIZE, IMAGE_SIZE, 3])
        labels = tf.placeholder(tf.int64, [args.batch_size])
        compression_obj = create_compressor(args.compression_hparams, global_step=global_step)
        logits = inference(images, compression_obj, args.batch_size)
        total_loss = loss(logits, labels)
        step_op = train_op(total_loss, global_step, compression_obj, args.learning_rate)
        python_updates = compression_obj.get_spec().update_option in (1, 2)
        alphas = [op.alpha for op in compression_obj.get_compression_ops()]
        saver = tf.train.Saver()
        batches = synthetic_batches(args.batch_size, args.seed)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            first_loss = loss_value = None
            start = time.perf_counter()
            for step in range(args.max_steps):
                x, y = next(batches)
                if python_updates:
                    compression_obj.run_update_step(session=sess, step_number=step)
                loss_value, _ = sess.run([total_loss, step_op], {images: x, labels: y})
                first_loss = loss_value if first_loss is None else first_loss
                if step % args.log_every == 0 or step == args.max_steps - 1:
                    alpha_values = sess.run(alphas)
                    print(
                        f"step {step:5d}  loss {loss_value:.4f}  alpha "
                        + " ".join(f"{a:.2f}" for a in alpha_values),
                        flush=True,
                    )
            elapsed = time.perf_counter() - start
            os.makedirs(args.train_dir, exist_ok=True)
            path = saver.save(
                sess, os.path.join(args.train_dir, "model.ckpt"), global_step=global_step
            )
            print(
                f"first loss {first_loss:.4f}, last loss {loss_value:.4f}; "
                f"{args.max_steps / elapsed:.1f} steps/s; compression ratio "
                f"{compression_obj.compression_ratio:.2f}; "
                f"checkpoint {path}"
            )
            return float(loss_value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train_dir",
        default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "cifar10_compression_train"),
        help="directory for the checkpoint",
    )
    parser.add_argument(
        "--compression_hparams",
        default=None,
        help="comma-separated compression hyperparameters (k=v,...); default "
        f"'{DEFAULT_HPARAMS}', with --quick '{QUICK_HPARAMS}'",
    )
    parser.add_argument("--max_steps", type=int, default=600, help="number of batches to run")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--log_every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="40 steps of 32 images (a few seconds)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.max_steps, args.batch_size, args.log_every = 40, 32, 10
    if args.compression_hparams is None:
        args.compression_hparams = QUICK_HPARAMS if args.quick else DEFAULT_HPARAMS
    tf.disable_eager_execution()
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
