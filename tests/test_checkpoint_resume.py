"""Kill-and-resume of compressed Keras training: SIGKILL mid-schedule, restart, restore, continue.

One model holds a CompressedDense for every method (compression_option 1–4, 8, 9, 10, 12) × update option
(0 TF ops, 1 Python, 2 both), so each process covers the whole matrix. A training process saves
at every epoch end with all five mechanisms at once — tf.train.Checkpoint, CheckpointManager,
keras BackupAndRestore, ModelCheckpoint(save_weights_only=True) and ModelCheckpoint (full
.keras) — and is SIGKILLed inside epoch 2, after its in-memory state has moved past the last
save (a firing at step 8). A second process restores a fresh model from each mechanism,
continues training, and trains an uninterrupted reference. Every resumed run must equal the
reference bit for bit: alpha, last update step, firing and skip counts, factors, kernel, bias,
optimizer slots and the loss, at the restore point and at the end.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tf_matcomp import keras as mk

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 300
MECHANISMS = ("checkpoint", "manager", "backup_and_restore", "weights_h5", "keras_file")
LAYERS = 8 * 3  # the script's METHODS × UPDATE_OPTIONS

_SCRIPT = r"""
import json, os, sys, time
import numpy as np
import tensorflow as tf
from tf_matcomp import keras as mk

METHODS, UPDATE_OPTIONS = (1, 2, 3, 4, 8, 9, 10, 12), (0, 1, 2)
# What makes each option compress an 8x4 kernel (rank: a factor x100, or 8 k-means centroids).
METHOD_HPARAMS = {
    4: "rank=8",
    8: "rank=8",  # codes, the zero code included
    9: "input_block_size=4,input_compression_factor=2,compress_output=True,"
    "output_block_size=4,output_compression_factor=2",
    10: "block_compression_factor=2",
    12: "compression_factor=2,num_bases=2",
}
STEPS_PER_EPOCH, EPOCHS, BATCH = 4, 3, 4
RESUME_STEP = 2 * STEPS_PER_EPOCH  # the last save is after epoch 1 (steps 0..7)
KILL_STEP = RESUME_STEP + 1  # killed after step 8 (a firing) ran
SCHEDULE = "begin_compression_step=0,compression_frequency=3,alpha_decrement_value=0.2"
# Option 8's mask (and codebook) updates at 2, 4, ..., 10: the one at 8 runs between the last
# save and the kill, those at 4 and 6 between alpha's firings.
PRUNING = ",begin_pruning_step=2,pruning_frequency=2,target_sparsity=0.5,sparsity_function_end_step=10"
role, work, argument = sys.argv[1:4]  # argument: the wait before the kill, or the mechanisms


def path(*names):
    return os.path.join(work, *names)


def build():
    inputs = tf.keras.Input((8,))
    branches = [
        mk.CompressedDense(
            4,
            spec=f"compression_option={m},{METHOD_HPARAMS.get(m, 'rank=200')},update_option={u},"
            + SCHEDULE
            + (PRUNING if m == 8 else ""),
            name=f"m{m}_u{u}",
            kernel_initializer=tf.keras.initializers.GlorotUniform(10 * m + u),
        )(inputs)
        for m in METHODS
        for u in UPDATE_OPTIONS
    ]
    model = tf.keras.Model(inputs, tf.keras.layers.Add()(branches))
    model.compile(optimizer=tf.keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


rng = np.random.default_rng(0)
x = rng.standard_normal((STEPS_PER_EPOCH * BATCH, 8)).astype(np.float32)
y = x @ rng.standard_normal((8, 4)).astype(np.float32)


def snapshot(model):
    # Optimizer paths without the optimizer's name ("sgd", "sgd_1": one per model built).
    slots = list(model.optimizer.variables)
    names = [v.path for v in model.weights]
    names += ["optimizer/" + v.path.split("/", 1)[1] for v in slots]
    return names, [np.array(v.numpy()) for v in list(model.weights) + slots]


def fit(model, initial_epoch=0, callbacks=()):
    history = model.fit(
        x, y, batch_size=BATCH, epochs=EPOCHS, initial_epoch=initial_epoch, shuffle=False,
        verbose=0, callbacks=[*callbacks, mk.CompressionCallback()],
    )
    return history.history["loss"]


class AtStep(tf.keras.callbacks.Callback):
    # Calls `action` at the start of training step `step` (before callbacks listed after it).
    def __init__(self, step, action):
        super().__init__()
        self.step, self.action = step, action

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            self.action(self.model)


def alphas(model):
    return [float(layer.alpha) for layer in mk.compressed_layers(model)]


if role == "train":
    model = build()
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=model.optimizer), path("manager"), 2
    )

    class Save(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            checkpoint.save(path("checkpoint", "ckpt"))
            manager.save()

    def die(model):  # report the in-memory state, then wait for the SIGKILL
        with open(path("killed.tmp"), "w") as f:
            json.dump({"pid": os.getpid(), "alpha": alphas(model)}, f)
        os.replace(path("killed.tmp"), path("killed.json"))
        time.sleep(float(argument))

    fit(model, callbacks=[
        Save(),
        tf.keras.callbacks.BackupAndRestore(path("backup")),
        tf.keras.callbacks.ModelCheckpoint(path("model.weights.h5"), save_weights_only=True),
        tf.keras.callbacks.ModelCheckpoint(path("model.keras")),
        AtStep(KILL_STEP, die),
    ])
    sys.exit("not killed")


def restored_by(mechanism):
    # (model, callbacks that restore it, initial epoch) for one mechanism.
    if mechanism == "backup_and_restore":  # restores in on_train_begin, sets the epoch
        return build(), [tf.keras.callbacks.BackupAndRestore(path("backup"))], 0
    if mechanism == "keras_file":
        model = tf.keras.models.load_model(path("model.keras"))
    else:
        model = build()
    if mechanism == "weights_h5":
        model.load_weights(path("model.weights.h5"))
    elif mechanism in ("checkpoint", "manager"):
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        latest = (
            tf.train.latest_checkpoint(path("checkpoint")) if mechanism == "checkpoint"
            else tf.train.CheckpointManager(checkpoint, path("manager"), 2).latest_checkpoint
        )
        checkpoint.restore(latest).assert_consumed().assert_existing_objects_matched()
    return model, [], int(model.optimizer.iterations.numpy()) // STEPS_PER_EPOCH


runs = {"reference": (build(), [], 0)}
for mechanism in json.loads(argument):
    runs[mechanism] = restored_by(mechanism)
for name, (model, callbacks, initial_epoch) in runs.items():
    at_resume = {}
    probe = AtStep(RESUME_STEP, lambda m: at_resume.update(state=snapshot(m), alpha=alphas(m)))
    losses = fit(model, initial_epoch, [*callbacks, probe])
    names, values = snapshot(model)
    np.savez(path(f"{name}.npz"), *values)
    np.savez(path(f"{name}_at_resume.npz"), *at_resume["state"][1])
    with open(path(f"{name}.json"), "w") as f:
        json.dump({"names": names, "loss": losses[-1], "alpha_at_resume": at_resume["alpha"],
                   "alpha": alphas(model)}, f)
"""


def _env():
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ,
        PYTHONPATH=REPO + (os.pathsep + path if path else ""),
        TF_CPP_MIN_LOG_LEVEL="2",
    )


def _tail(path) -> str:
    with open(path) as f:
        return f.read()[-3000:]


def _train_and_kill(work) -> dict:
    """Runs the training process until it reports the kill step, SIGKILLs it; its report."""
    log = os.path.join(work, "train.log")
    report = os.path.join(work, "killed.json")
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, "train", work, str(TIMEOUT)],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + TIMEOUT
            while not os.path.exists(report):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the training process never reached the kill step:\n{_tail(log)}")
                time.sleep(0.2)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
    with open(report) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"killed": the killed process's report, name: (info, final values, values at resume)}
    for the reference and every mechanism."""
    work = str(tmp_path_factory.mktemp("resume"))
    killed = _train_and_kill(work)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, "resume", work, json.dumps(MECHANISMS)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = {"killed": killed}
    for name in ("reference",) + MECHANISMS:
        with open(os.path.join(work, f"{name}.json")) as f:
            info = json.load(f)
        final, at_resume = (
            np.load(os.path.join(work, f"{name}{suffix}.npz")) for suffix in ("", "_at_resume")
        )
        results[name] = (
            info,
            [final[f"arr_{i}"] for i in range(len(info["names"]))],
            [at_resume[f"arr_{i}"] for i in range(len(info["names"]))],
        )
    return results


def _assert_identical(names, got, want, when):
    assert len(got) == len(want) == len(names)
    for name, g, w in zip(names, got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        np.testing.assert_array_equal(g, w, err_msg=f"{name} differs {when}")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_killed_run_resumes_identically(runs, mechanism):
    reference, (info, final, at_resume) = runs["reference"], runs[mechanism]
    ref_info, ref_final, ref_at_resume = reference
    names = ref_info["names"]
    assert info["names"] == names
    # Every layer × (kernel, bias, 2+ factors, alpha, last step, count, skipped) are all saved,
    # and option 8's last mask update step (3 layers).
    assert sum(name.endswith("/skipped_update_count") for name in names) == LAYERS
    assert sum(name.endswith("/last_recompression_step") for name in names) == 3
    # Restored mid-schedule (fired at 2 and 5; the killed process had also fired at 8) ...
    assert info["alpha_at_resume"] == pytest.approx([0.6] * LAYERS)
    assert runs["killed"]["alpha"] == pytest.approx([0.4] * LAYERS)
    _assert_identical(names, at_resume, ref_at_resume, "at the restore point (step 8)")
    # ... and continued exactly as the uninterrupted run (fired at 8 and 11).
    _assert_identical(names, final, ref_final, "at the end of training")
    assert info["loss"] == ref_info["loss"]
    assert info["alpha"] == ref_info["alpha"] == pytest.approx([0.2] * LAYERS)


def test_every_compression_weight_of_every_layer_kind_is_in_a_tf_checkpoint(tmp_path):
    """tf.train.Checkpoint(model=...) saves and restores every weight of each compressed layer
    kind (the compression state lives in the layer's CompressionOp, reached through the layer's
    KernelCompression module), each set to a distinct value first."""
    spec = "compression_option=1,rank=200,begin_compression_step=0"

    def build():
        tokens = tf.keras.Input((3,), dtype="int32")
        image = tf.keras.Input((5, 5, 2))
        embedded = mk.CompressedEmbedding(10, 4, spec=spec, name="embedding")(tokens)
        einsum = mk.CompressedEinsumDense("abc,cd->abd", (3, 6), spec=spec, name="einsum")
        conv = mk.CompressedConv2D(4, 3, spec=spec, name="conv")(image)
        dense = mk.CompressedDense(2, spec=spec, name="dense")(tf.keras.layers.Flatten()(conv))
        return tf.keras.Model([tokens, image], [einsum(embedded), dense])

    model, fresh = build(), build()
    for i, variable in enumerate(model.weights):
        variable.assign(np.full(variable.shape, i + 1).astype(variable.dtype))
    saved = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=fresh).restore(saved).assert_consumed()
    assert [v.path for v in fresh.weights] == [v.path for v in model.weights]
    for got, want in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)


def test_restore_before_build_waits_for_the_layer_to_build(tmp_path):
    """A tf.train.Checkpoint restored into an unbuilt model restores the compression state
    once the layer builds (TF's deferred restoration follows the same object graph)."""
    spec = (
        "compression_option=1,rank=200,begin_compression_step=0,compression_frequency=1,"
        "alpha_decrement_value=0.25"
    )
    x = np.ones((1, 6), np.float32)
    model = tf.keras.Sequential([mk.CompressedDense(4, spec=spec, name="dense")])
    model(x)
    for step in range(3):
        model.layers[0].run_alpha_update(step)
    saved = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = tf.keras.Sequential([mk.CompressedDense(4, spec=spec, name="dense")])
    status = tf.train.Checkpoint(model=fresh).restore(saved)
    fresh(x)  # builds the layer: its state variables are created, then restored
    status.assert_consumed()
    assert float(fresh.layers[0].alpha) == 0.25
    assert fresh.layers[0].compression.last_update_step() == 2
    for got, want in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)
