"""Compression under tf.distribute: MirroredStrategy over 2 logical CPUs matches one device;
MultiWorkerMirroredStrategy with 2 local workers trains a few steps in step.

Both run in subprocesses: logical devices must be configured before TensorFlow initializes, and
each worker needs its own TF_CONFIG.
"""

import json
import math
import os
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 180

_COMMON = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
from tf_matcomp import keras as mk

SPEC = ("compression_option=1,rank=200,begin_compression_step=0,compression_frequency=2,"
        "alpha_decrement_value=0.25")


def build():
    init = tf.keras.initializers.GlorotUniform
    inputs = tf.keras.Input((12,))
    h = tf.keras.layers.Dense(16, activation="relu", name="hidden",
                              kernel_initializer=init(0))(inputs)
    out = tf.keras.layers.Dense(3, name="out", kernel_initializer=init(1))(h)
    return mk.compress_model(tf.keras.Model(inputs, out), SPEC)


def data(n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 12)).astype(np.float32)
    return x, ((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)) % 3


def train(strategy, steps, global_batch):
    x, y = data(steps * global_batch)
    with strategy.scope():
        model = build()
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=global_batch, epochs=1, verbose=0, shuffle=False,
                        callbacks=[mk.CompressionCallback()])
    return {"alpha": [float(l.alpha) for l in mk.compressed_layers(model)],
            "last_step": [l.compression.last_update_step() for l in mk.compressed_layers(model)],
            "logged_alpha": history.history["alpha"],
            "weights": [np.asarray(w).tolist() for w in model.weights
                        if np.asarray(w).dtype.kind == "f"]}
"""

_MIRRORED = (
    _COMMON
    + r"""
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
single = train(tf.distribute.OneDeviceStrategy("/cpu:0"), steps=9, global_batch=16)
mirrored = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), steps=9, global_batch=16)
print("RESULT " + json.dumps({"single": single, "mirrored": mirrored}))
"""
)

# Keras 3.15's fit() fails under MultiWorkerMirroredStrategy before the first step (its
# _maybe_symbolic_build reduces a PerReplica batch that CollectiveAllReduce cannot convert), so
# the workers run a custom loop: strategy.run for the gradient step and the layers' TF-op update
# in cross-replica context before it, at the step the optimizer is about to take.
_WORKER = (
    _COMMON
    + r"""
strategy = tf.distribute.MultiWorkerMirroredStrategy()
steps, global_batch = 6, 8
x, y = data(steps * global_batch)
with strategy.scope():
    model = build()
    optimizer = tf.keras.optimizers.SGD(0.1)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="sum_over_batch_size")
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch).with_options(options)
layers = mk.compressed_layers(model)


@tf.function
def update(step):
    return [layer.update(step) for layer in layers]


@tf.function
def train_step(batch):
    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(inputs, training=True))
            loss = loss / strategy.num_replicas_in_sync
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return strategy.reduce("SUM", strategy.run(replica_step, args=batch), axis=None)


losses = []
for step, batch in enumerate(strategy.experimental_distribute_dataset(dataset)):
    update(tf.constant(step, tf.int64))
    losses.append(float(train_step(batch)))
result = {"alpha": [float(l.alpha) for l in layers],
          "last_step": [l.compression.last_update_step() for l in layers],
          "losses": losses,
          "weights": [np.asarray(w).tolist() for w in model.weights
                      if np.asarray(w).dtype.kind == "f"]}
with open(sys.argv[1], "w") as f:
    json.dump(result, f)
"""
)


def _env(**extra):
    env = dict(
        os.environ,
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _max_difference(a, b):
    import numpy as np

    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0)) for x, y in zip(a, b)
    )


@pytest.mark.slow
def test_mirrored_two_logical_cpus_matches_one_device():
    done = subprocess.run(
        [sys.executable, "-c", _MIRRORED],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    single, mirrored = result["single"], result["mirrored"]
    # Steps 0..8: firings at 1, 3, 5, 7 → alpha 1 − 4 · 0.25 = 0.
    assert single["alpha"] == mirrored["alpha"] == [0.0, 0.0]
    assert single["last_step"] == mirrored["last_step"] == [7, 7]
    assert mirrored["logged_alpha"] == [0.0]
    assert len(single["weights"]) == len(mirrored["weights"])
    assert _max_difference(single["weights"], mirrored["weights"]) < 1e-4


@pytest.mark.slow
def test_multi_worker_mirrored_two_local_workers(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    outputs = [str(tmp_path / f"worker{i}.json") for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, outputs[i]],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            ),
        )
        for i in range(2)
    ]
    logs = []
    try:
        for worker in workers:
            _, err = worker.communicate(timeout=TIMEOUT)
            logs.append(err)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, err in zip(workers, logs):
        assert worker.returncode == 0, err[-4000:]
    results = []
    for path in outputs:
        with open(path) as f:
            results.append(json.load(f))
    # Steps 0..5: firings at 1, 3, 5 → alpha 0.25, identical on both workers.
    for result in results:
        assert result["alpha"] == [0.25, 0.25] and result["last_step"] == [5, 5]
        assert len(result["losses"]) == 6 and all(map(math.isfinite, result["losses"]))
    # Mirrored variables stay in sync across the workers (gradients all-reduced).
    assert _max_difference(results[0]["weights"], results[1]["weights"]) < 1e-6
