"""Training with compression: the cost of a `model.fit` step of an MLP whose two 2048-wide Dense
layers (8.4M parameters) are compressed by low rank (k = 512, 256 and 128 of 2048), against the
same model uncompressed, all measured in this run; and inference after `strip_compression`
against the uncompressed model. Between updates a compressed layer computes x·A and x·B·C: the
"FLOP floor" row is that step's matmul FLOPs over the uncompressed step's.

    python bench/bench_training_step.py [--quick] [--markdown FILE]

Per batch size: the uncompressed step; the compressed step in each phase of the alpha schedule
(alpha 1 before compression begins, 0 < alpha < 1 between updates, alpha 0 once compressed),
with the CompressionCallback running; the update steps (the first firing computes the factors:
a randomized SVD per layer) amortised at the demo's pace, 10 firings `frequency` steps apart; and
the stripped model's forward pass.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _timing import append_markdown, best_time, parse_arguments, print_table  # noqa: E402
from tf_matcomp import keras as matcomp_keras  # noqa: E402

WIDTH = 2048
CLASSES = 10
COMPRESSED = ["hidden_1", "hidden_2"]
FIRINGS = 10  # the demo's alpha staircase: 1 → 0 in 10 firings
FREQUENCY = 100  # steps between firings (graph_compression's example spec)
# Low-rank specs by the k they keep of 2048: rank=400 keeps k = 512 (k·(m + n) = m·n / 2,
# compression ratio 2 on these layers), rank=800 k = 256 (ratio 4), rank=1600 k = 128 (ratio 8).
SPECS = {
    512: "compression_option=1,rank=400",
    256: "compression_option=1,rank=800",
    128: "compression_option=1,rank=1600",
}
# Schedules that put the whole measured run in one phase of alpha (the callback still checks
# the schedule every step): compression not begun; one firing at step 0 to alpha 0.5 or to 0.
PHASES = {
    "alpha = 1 (not begun)": "begin_compression_step=1000000000",
    "0 < alpha < 1": "end_compression_step=0,compression_frequency=1,alpha_decrement_value=0.5",
    "alpha = 0 (compressed)": "end_compression_step=0,compression_frequency=1,"
    "alpha_decrement_value=1.0",
}


def _model(seed: int = 0) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((WIDTH,))
    x = tf.keras.layers.Dense(WIDTH, activation="relu", name=COMPRESSED[0])(inputs)
    x = tf.keras.layers.Dense(WIDTH, activation="relu", name=COMPRESSED[1])(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(CLASSES, name="logits")(x))


def _compile(model: tf.keras.Model) -> tf.keras.Model:
    model.compile(
        optimizer=tf.keras.optimizers.SGD(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class _StepTimer(tf.keras.callbacks.Callback):
    """Times from one batch's begin to the next's: the train step and every callback's work
    (the CompressionCallback's before the batch included)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        now = time.perf_counter()
        if self._start is not None:
            self.seconds.append(now - self._start)
        self._start = now


def _interleaved_step_seconds(runs: dict, x, y, batch: int, rounds: int) -> dict:
    """{name: best over `rounds` of the median step time} for runs {name: (model, callbacks)}.

    The runs take turns, one epoch each per round, so a load that drifts during the benchmark
    (a shared machine) weighs on all of them alike; a first round (tracing) is dropped."""
    best = {name: float("inf") for name in runs}
    for round_ in range(rounds + 1):
        for name, (model, callbacks) in runs.items():
            timer = _StepTimer()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=[timer, *callbacks])
            if round_:
                best[name] = min(best[name], float(np.median(timer.seconds)))
    return best


def _compressed(method_spec: str, schedule: str) -> tuple:
    model = matcomp_keras.compress_model(_model(), f"{method_spec},{schedule}", layers=COMPRESSED)
    return _compile(model), matcomp_keras.CompressionCallback()


def _flop_floor(k: int) -> float:
    """The step's matmul FLOPs between updates over the uncompressed step's, per sample, each
    product 2·(its three sizes). Uncompressed: the forward product and the kernel's gradient in
    both hidden layers, the input's gradient in the second only (the model's input needs none),
    three in the logits layer. A compressed layer adds x·B, (x·B)·C, g·Cᵀ and the gradients of B
    and C, and in the second layer the input gradient's (g·Cᵀ)·Bᵀ: 2·n·k each."""
    n = WIDTH
    uncompressed = (2 + 3) * 2 * n * n + 3 * 2 * n * CLASSES
    return 1 + (5 + 6) * 2 * n * k / uncompressed


def main() -> None:
    args = parse_arguments(__doc__, "batch 256 only, fewer rounds")
    batches = [256] if args.quick else [256, 2048]
    rounds = 3 if args.quick else 5
    rng = np.random.default_rng(0)
    header = ["batch", "k", "what", "ms per step", "ratio vs uncompressed"]
    rows = []
    for batch, (k, method_spec) in ((b, item) for b in batches for item in SPECS.items()):
        steps = 8
        x = rng.standard_normal((batch * steps, WIDTH), dtype=np.float32)
        y = rng.integers(0, CLASSES, batch * steps)
        dense = _compile(_model())
        runs = {"uncompressed": (dense, [])}
        for phase, spec in PHASES.items():
            model, callback = _compressed(method_spec, spec)
            runs[phase] = (model, [callback])
        seconds = _interleaved_step_seconds(runs, x, y, batch, rounds)
        baseline = seconds["uncompressed"]
        rows.append([batch, k, "uncompressed step", f"{baseline * 1e3:.1f}", "1.00"])
        for phase in PHASES:
            rows.append(
                [
                    batch,
                    k,
                    f"compressed step, {phase}",
                    f"{seconds[phase] * 1e3:.1f}",
                    f"{seconds[phase] / baseline:.2f}",
                ]
            )
        # The update steps: the first firing computes the factors, the other 9 step alpha.
        model, callback = _compressed(
            method_spec, f"compression_frequency=1,alpha_decrement_value={1.0 / FIRINGS}"
        )
        repeats = -(-FIRINGS // steps)
        model.fit(
            np.tile(x, (repeats, 1))[: batch * FIRINGS],
            np.tile(y, repeats)[: batch * FIRINGS],
            batch_size=batch,
            epochs=1,
            verbose=0,
            callbacks=[callback],
        )
        update_total = float(np.sum(callback.update_seconds))
        amortised = update_total / (FIRINGS * FREQUENCY)
        between = seconds["0 < alpha < 1"]
        rows.append(
            [
                batch,
                k,
                f"updates ({FIRINGS} firings, {update_total:.2f} s in all) per step "
                f"at frequency {FREQUENCY}",
                f"{amortised * 1e3:.1f}",
                f"{amortised / baseline:.2f}",
            ]
        )
        rows.append(
            [
                batch,
                k,
                "compressed step between updates + amortised updates",
                f"{(between + amortised) * 1e3:.1f}",
                f"{(between + amortised) / baseline:.2f}",
            ]
        )
        rows.append(
            [batch, k, "FLOP floor between updates (matmul FLOPs)", "", f"{_flop_floor(k):.2f}"]
        )
        stripped = matcomp_keras.strip_compression(model)
        ratio = matcomp_keras.compression_ratio(stripped)
        inputs = tf.constant(x[:batch])
        infer_dense = tf.function(lambda t: dense(t, training=False), autograph=False)
        infer_stripped = tf.function(lambda t: stripped(t, training=False), autograph=False)
        t_dense = best_time(lambda: infer_dense(inputs).numpy(), 10, warmup=2)
        t_stripped = best_time(lambda: infer_stripped(inputs).numpy(), 10, warmup=2)
        rows.append([batch, k, "inference, uncompressed", f"{t_dense * 1e3:.2f}", "1.00"])
        rows.append(
            [
                batch,
                k,
                f"inference, stripped (compression ratio {ratio:.2f})",
                f"{t_stripped * 1e3:.2f}",
                f"{t_stripped / t_dense:.2f}",
            ]
        )
    print(f"TensorFlow {tf.__version__}")
    print_table(header, rows)
    append_markdown(
        args.markdown,
        "Training with compression (2 × Dense 2048², low rank k = 512, 256 and 128)",
        [
            (
                "Step = one batch begin to the next in `model.fit` (the CompressionCallback's work "
                "included); median of an epoch, best of 3–5 rounds in which the models take turns. "
                "`python bench/bench_training_step.py`",
                header,
                rows,
            )
        ],
    )


if __name__ == "__main__":
    main()
