"""The main job: train a digits classifier, then the same model compressed by each method.

Trains a baseline MLP on real handwritten digits (scikit-learn's `load_digits`: 1,797 8×8
images, shipped with scikit-learn, no download; `--data` takes an MNIST `.npz` instead), then
the same model with its hidden Dense layers (and, in the rows that say so, the logits layer
too) compressed during training by each compression option at a few ratios. Each run ends with alpha at 0, so the model computes only with the
compressed form; it is then stripped to that form (`tf_matcomp.keras.strip_compression`) and
the stripped model is what gets evaluated and measured. Prints a table (test accuracy,
parameters, bytes, compression ratio, time per epoch, time per compression update) and writes
a PNG plot of accuracy against compressed size per method.

    python -m tf_matcomp.demo                 # ~2 minutes on 2 CPU cores
    python -m tf_matcomp.demo --quick         # one setting per method, < 30 s
    python -m tf_matcomp.demo --data mnist.npz --out results/
"""

import argparse
import dataclasses
import os
import sys
import time
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_matcomp import keras as matcomp_keras  # noqa: E402
from tf_matcomp.compressors import registry  # noqa: E402

HIDDEN_UNITS = 256
BATCH_SIZE = 32
LAYERS_TO_COMPRESS = ("hidden_1", "hidden_2")
LAYER_GROUPS = {LAYERS_TO_COMPRESS: "hidden", LAYERS_TO_COMPRESS + ("logits",): "hidden+logits"}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Flattened float32 images in [0, 1] and integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


@dataclasses.dataclass(frozen=True)
class Setting:
    """One compressed configuration: a method and the hparams that set its ratio.

    `layer_hparams` (layer name → that layer's own method hparams, added to `spec`) names the
    layers to compress; without it the hidden layers are compressed with `spec` alone."""

    method: str
    label: str
    spec: Optional[str]
    layer_hparams: Optional[Mapping[str, str]] = None

    @property
    def layers(self) -> Tuple[str, ...]:
        return tuple(self.layer_hparams) if self.layer_hparams else LAYERS_TO_COMPRESS

    @property
    def compresses(self) -> str:
        """Which layers the run compresses, for the table ("-" for the baseline)."""
        return "-" if self.spec is None else LAYER_GROUPS.get(self.layers, ",".join(self.layers))


@dataclasses.dataclass
class RunResult:
    method: str
    label: str
    compresses: str
    accuracy: float
    params: int
    bytes: int
    ratio: float
    epoch_seconds: float
    update_seconds: Optional[float]


def load_dataset(path: Optional[str] = None, seed: int = 0) -> Dataset:
    """scikit-learn's digits (split 80/20, stratified), or an MNIST `.npz` at `path`.

    The `.npz` must hold `x_train`, `y_train`, `x_test`, `y_test` (the layout of Keras'
    `mnist.npz`); images of any shape are flattened and scaled by their maximum.

    Raises:
      ValueError: `path` does not exist or lacks one of the four arrays.
    """
    if path is None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x = (digits.data / 16.0).astype(np.float32)
        x_train, x_test, y_train, y_test = train_test_split(
            x,
            digits.target.astype(np.int64),
            test_size=0.2,
            random_state=seed,
            stratify=digits.target,
        )
        return Dataset("sklearn digits 8x8", x_train, y_train, x_test, y_test)
    if not os.path.isfile(path):
        raise ValueError(f"--data: no such file: {path}")
    with np.load(path) as data:
        missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in data]
        if missing:
            raise ValueError(
                f"--data: {path} lacks arrays {missing} (expected the layout of "
                "Keras' mnist.npz: x_train, y_train, x_test, y_test)"
            )
        arrays = {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    scale = float(max(arrays["x_train"].max(), 1))

    def images(a):
        return (a.reshape(len(a), -1) / scale).astype(np.float32)

    return Dataset(
        os.path.basename(path),
        images(arrays["x_train"]),
        arrays["y_train"].astype(np.int64),
        images(arrays["x_test"]),
        arrays["y_test"].astype(np.int64),
    )


def build_mlp(input_dim: int, num_classes: int, seed: int) -> tf.keras.Model:
    """input → 256 relu → 256 relu → classes; the same initial weights for every run."""
    init = tf.keras.initializers.GlorotUniform
    inputs = tf.keras.Input(shape=(input_dim,), name="pixels")
    x = tf.keras.layers.Dense(
        HIDDEN_UNITS, activation="relu", name="hidden_1", kernel_initializer=init(seed=seed)
    )(inputs)
    x = tf.keras.layers.Dense(
        HIDDEN_UNITS, activation="relu", name="hidden_2", kernel_initializer=init(seed=seed + 1)
    )(x)
    outputs = tf.keras.layers.Dense(
        num_classes, name="logits", kernel_initializer=init(seed=seed + 2)
    )(x)
    return tf.keras.Model(inputs, outputs, name="digits_mlp")


def settings(quick: bool, steps_per_epoch: int, epochs: int) -> List[Setting]:
    """The compression runs: each option at a few ratios (one each with `quick`).

    The schedule starts after the first epoch and brings alpha to 0 by about the middle of
    training, leaving the rest for the compressed model to recover.
    """
    firings = 5 if quick else 10
    frequency = max(1, (epochs // 2 * steps_per_epoch - steps_per_epoch) // firings)
    schedule = (
        f"begin_compression_step={steps_per_epoch},compression_frequency={frequency},"
        f"alpha_decrement_value={1.0 / firings}"
    )
    # Pruning + k-means: the mask follows alpha, reaching its target sparsity as alpha reaches 0.
    pruning = (
        f"begin_pruning_step={steps_per_epoch},pruning_frequency={frequency},"
        f"sparsity_function_begin_step={steps_per_epoch},"
        f"sparsity_function_end_step={steps_per_epoch + (firings - 1) * frequency}"
    )
    # registry method name -> [(label, extra hparams for the hidden layers, or a dict of each
    # layer's own extra hparams: the layers it names are compressed)]
    grid: Dict[str, List[Tuple[str, Union[str, Dict[str, str]]]]] = {
        "lowrank": [("rank=400", "rank=400"), ("rank=800", "rank=800"), ("rank=1600", "rank=1600")],
        "simhash": [("rank=200", "rank=200"), ("rank=400", "rank=400"), ("rank=800", "rank=800")],
        "dictionary": [("rank=400", "rank=400"), ("rank=800", "rank=800")],
        "kmeans": [
            ("16 levels", "rank=16,block_size=1"),
            ("16 x 4-blocks", "rank=16,block_size=4"),
            ("64 x 8-blocks", "rank=64,block_size=8"),
        ],
        "pruned_kmeans": [  # rank counts the zero code: 15 centroids + 0, and so on
            ("16 levels 50%", f"rank=16,block_size=1,target_sparsity=0.5,{pruning}"),
            ("16 x 4 50%", f"rank=16,block_size=4,block_width=4,target_sparsity=0.5,{pruning}"),
            ("8 x 32 50%", f"rank=8,block_size=32,block_width=32,target_sparsity=0.5,{pruning}"),
            # Packed storage: a mask bit per 1x4 pruning block, 5-bit codes of the kept weights;
            # the logits layer (12 KB dense) compressed too, at a milder 50%.
            (
                "32|16 80|50%",
                {
                    **dict.fromkeys(
                        LAYERS_TO_COMPRESS,
                        f"rank=32,block_size=1,block_width=4,target_sparsity=0.8,{pruning}",
                    ),
                    "logits": f"rank=16,block_size=1,block_width=2,target_sparsity=0.5,{pruning}",
                },
            ),
        ],
        "inout": [
            ("in 32/4", "input_block_size=32,input_compression_factor=4"),
            (
                "in+out 32/4",
                "input_block_size=32,input_compression_factor=4,compress_output=True,"
                "output_block_size=32,output_compression_factor=4",
            ),
            ("in 64/8", "input_block_size=64,input_compression_factor=8"),
        ],
    }
    chosen = []
    for name, levels in grid.items():
        method = registry.method_named(name)
        for label, extra in levels[1:2] if quick else levels:
            spec = f"compression_option={method.option},{schedule}"
            if isinstance(extra, dict):
                chosen.append(Setting(method.label, label, spec, extra))
            else:
                chosen.append(Setting(method.label, label, f"{spec},{extra}"))
    return chosen


class _EpochTimer(tf.keras.callbacks.Callback):
    """Wall time of each training epoch."""

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train_and_measure(
    data: Dataset,
    setting: Setting,
    epochs: int,
    seed: int,
    verbose: int,
) -> RunResult:
    """Trains one model (compressed when `setting.spec` is given) and measures its deployable
    form; the ratio is its `compression_ratio` (1 for the baseline itself)."""
    method, label, spec = setting.method, setting.label, setting.spec
    tf.keras.utils.set_random_seed(seed)
    model = build_mlp(data.x_train.shape[1], data.num_classes, seed)
    callbacks: List[tf.keras.callbacks.Callback] = []
    compression = None
    if setting.layer_hparams:
        layer_specs = {name: f"{spec},{extra}" for name, extra in setting.layer_hparams.items()}
        model = matcomp_keras.compress_model(model, layer_specs=layer_specs)
    elif spec is not None:
        model = matcomp_keras.compress_model(model, spec, layers=LAYERS_TO_COMPRESS)
    if spec is not None:
        compression = matcomp_keras.CompressionCallback()
        callbacks.append(compression)
    timer = _EpochTimer()
    callbacks.append(timer)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=True,
    )
    if compression is not None and compression.min_alpha() > 0:
        raise RuntimeError(
            f"{method} {label}: alpha is {compression.min_alpha()} after "
            "training; lengthen training or raise alpha_decrement_value"
        )
    deployed = matcomp_keras.strip_compression(model)
    deployed.compile(
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    _, accuracy = deployed.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    size = matcomp_keras.model_size(deployed)
    return RunResult(
        method=method,
        label=label,
        compresses=setting.compresses,
        accuracy=float(accuracy),
        params=size.params,
        bytes=size.bytes,
        ratio=matcomp_keras.compression_ratio(deployed),
        epoch_seconds=float(np.mean(timer.seconds[1:] or timer.seconds)),
        update_seconds=compression.mean_update_seconds() if compression else None,
    )


def format_table(results: Sequence[RunResult]) -> str:
    """A fixed-width text table, one row per run."""
    header = (
        f"{'method':<15} {'setting':<14} {'compresses':<13} {'accuracy':>8} {'params':>8} "
        f"{'bytes':>9} "
        f"{'ratio':>6} {'s/epoch':>8} {'ms/update':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        update = "-" if r.update_seconds is None else f"{r.update_seconds * 1e3:10.1f}"
        lines.append(
            f"{r.method:<15} {r.label:<14} {r.compresses:<13} {r.accuracy:8.4f} {r.params:8d} "
            f"{r.bytes:9d} {r.ratio:6.2f} {r.epoch_seconds:8.3f} {update:>10}"
        )
    return "\n".join(lines)


def plot_unavailable_reason() -> Optional[str]:
    """Why the plot cannot be drawn (matplotlib missing), or None when it can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        return (
            f"matplotlib is not installed ({error}): the table is printed and the plot "
            f"is skipped; `pip install matplotlib` to get the plot"
        )
    return None


def plot(results: Sequence[RunResult], path: str, title: str) -> None:
    """Accuracy against deployed bytes, one line per method, the baseline as a reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_method: Dict[str, List[RunResult]] = {}
    for r in results:
        by_method.setdefault(r.method, []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, runs in by_method.items():
        runs = sorted(runs, key=lambda r: r.bytes)
        ax.plot(
            [r.bytes / 1024 for r in runs],
            [r.accuracy for r in runs],
            marker="*" if method == "baseline" else "o",
            linestyle="-",
            label=method,
        )
    ax.set_xscale("log")
    ax.set_xlabel("model size after strip_compression (KiB, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer epochs and one setting per method (< 30 s)"
    )
    parser.add_argument(
        "--data",
        metavar="NPZ",
        help="an MNIST .npz (x_train, y_train, x_test, y_test) instead of the scikit-learn digits",
    )
    parser.add_argument(
        "--epochs", type=int, help="training epochs per run (default 12, 4 with --quick)"
    )
    parser.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help="directory for the plot demo_accuracy_vs_size.png (default .)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="Keras fit verbosity (default: progress bars on a terminal)",
    )
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (4 if args.quick else 12)
    if epochs < 2:
        parser.error("--epochs must be at least 2 (the schedule starts after epoch 1)")
    try:
        data = load_dataset(args.data, args.seed)
    except ValueError as error:
        parser.error(str(error))
    os.makedirs(args.out, exist_ok=True)
    no_plot = plot_unavailable_reason()  # checked before any training
    if no_plot:
        warnings.warn(no_plot, RuntimeWarning, stacklevel=1)
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    steps_per_epoch = -(-len(data.x_train) // BATCH_SIZE)

    print(
        f"TensorFlow {tf.__version__}; "
        f"data: {data.name}, {len(data.x_train)} train / {len(data.x_test)} test, "
        f"{data.x_train.shape[1]} features; {epochs} epochs x {steps_per_epoch} steps"
    )
    start = time.perf_counter()
    results = []
    runs = [Setting("baseline", "dense", None)] + settings(args.quick, steps_per_epoch, epochs)
    for i, setting in enumerate(runs, 1):
        print(
            f"\n[{i}/{len(runs)}] {setting.method} {setting.label}"
            + (f"   spec: {setting.spec}" if setting.spec else "")
            + "".join(
                f"\n  {name}: {extra}" for name, extra in (setting.layer_hparams or {}).items()
            ),
            flush=True,
        )
        results.append(train_and_measure(data, setting, epochs, args.seed, verbose))
    table = format_table(results)
    print("\n" + table)
    plot_path = os.path.join(args.out, "demo_accuracy_vs_size.png")
    if not no_plot:
        plot(results, plot_path, f"{data.name}: accuracy vs compressed size")
    plot_line = "skipped (matplotlib is not installed)" if no_plot else plot_path
    print(
        f"\nbytes: parameters stored by the stripped model (float32 weights, packed codes); "
        f"ratio: compression_ratio (dense bytes / deployed bytes, as in the progress bar); "
        f"compresses: the layers compressed (hidden: {', '.join(LAYERS_TO_COMPRESS)}).\n"
        f"plot: {plot_line}\n"
        f"total {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
