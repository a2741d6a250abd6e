"""`tf-matcomp`: compress a trained Keras model's Dense layers, or show what a model holds.

    tf-matcomp compress MODEL.keras --method lowrank --rank 400 -o OUT.keras
    tf-matcomp info MODEL.keras

`compress` replaces the chosen Dense layers (all of them by default) by their compressed
form, computed once from the trained kernel, prints a per-layer report (shape, k, relative
error, bytes before and after) and saves the stripped model, which holds only the compressed
form (`--keep-training-form` saves the trainable CompressedDense form instead, to fine-tune).
`info` lists every layer with a kernel and how it is stored. Errors print one line on stderr
and exit with status 1 (2 for a bad command line). Also runs as `python -m tf_matcomp.cli`.
"""

import argparse
import os
import sys
from typing import List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_matcomp.compressors import registry  # noqa: E402  (after the TF log level is set)


class CliError(Exception):
    """An error to report as one line on stderr."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf-matcomp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compress = commands.add_parser("compress", help="compress a saved model's Dense layers")
    compress.add_argument("model", metavar="MODEL.keras")
    compress.add_argument("-o", "--output", required=True, metavar="OUT.keras")
    compress.add_argument("--method", choices=sorted(registry.METHODS), default="lowrank")
    compress.add_argument(
        "--rank",
        type=int,
        default=None,
        help="the `rank` hparam as graph_compression means it: a compression "
        "factor x100 for lowrank/simhash/dictionary, the number of "
        "centroids for kmeans (default: the spec's default)",
    )
    compress.add_argument(
        "--block-size",
        type=int,
        default=None,
        help="kmeans: entries per quantized block (must divide the columns)",
    )
    compress.add_argument(
        "--layers",
        default=None,
        metavar="NAME[,NAME...]",
        help="Dense layers to compress (default: all)",
    )
    compress.add_argument(
        "--spec", default="", metavar="K=V,...", help="further hparams, e.g. use_tpu=true"
    )
    compress.add_argument(
        "--keep-training-form",
        action="store_true",
        help="save CompressedDense layers (with the dense kernel, alpha=0) "
        "instead of the stripped inference form",
    )

    info = commands.add_parser("info", help="show which layers are compressed and how")
    info.add_argument("model", metavar="MODEL.keras")
    return parser


def _check_model_path(path: str) -> None:
    """Fails before TensorFlow is imported (its start-up log lines stay off stderr)."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    if not path.endswith(".keras"):
        raise CliError(f"{path}: not a .keras file (save models with model.save('x.keras'))")


def _load(path: str):
    _check_model_path(path)
    import tensorflow as tf

    from tf_matcomp import keras as matcomp_keras

    try:
        return tf.keras.models.load_model(
            path, custom_objects=matcomp_keras.custom_objects(), compile=False
        )
    except Exception as error:  # Keras raises many types for a corrupt or foreign file.
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CliError(f"{path}: not a loadable Keras model ({first_line})") from error


def _spec_string(args) -> str:
    from tf_matcomp.keras import ONE_SHOT_SCHEDULE

    parts = [f"compression_option={registry.method_named(args.method).option}", ONE_SHOT_SCHEDULE]
    if args.rank is not None:
        parts.append(f"rank={args.rank}")
    if args.block_size is not None:
        parts.append(f"block_size={args.block_size}")
    if args.spec:
        parts.append(args.spec)
    return ",".join(parts)


def _compress(args) -> None:
    _check_model_path(args.model)
    if not args.output.endswith(".keras"):
        raise CliError(f"-o {args.output}: the output must end in .keras")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise CliError(f"-o {args.output}: directory {out_dir} does not exist")
    from tf_matcomp import keras as matcomp_keras

    model = _load(args.model)
    layers: Optional[List[str]] = None
    if args.layers:
        layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    try:
        compressed = matcomp_keras.compress_model(model, _spec_string(args), layers=layers)
        for layer in matcomp_keras.compressed_layers(compressed):
            layer.run_alpha_update(0)  # the one-shot schedule: factors now, alpha to 0
        rows = matcomp_keras.compression_report(compressed)
        out = compressed if args.keep_training_form else matcomp_keras.strip_compression(compressed)
    except ValueError as error:
        raise CliError(str(error)) from error
    out.save(args.output)
    print(matcomp_keras.format_report(rows))
    before = matcomp_keras.model_size(model)
    after = matcomp_keras.model_size(out)
    print(
        f"model: {before.params} -> {after.params} parameters, {before.bytes} -> "
        f"{after.bytes} bytes ({before.bytes / after.bytes:.2f}x); saved {args.output}"
    )


def _info(args) -> None:
    _check_model_path(args.model)
    from tf_matcomp import keras as matcomp_keras

    model = _load(args.model)
    rows = matcomp_keras.compression_report(model, include_dense=True)
    if not rows:
        raise CliError(f"{args.model}: the model has no Dense, Conv2D or compressed layers")
    print(matcomp_keras.format_report(rows))
    size = matcomp_keras.model_size(model)
    print(f"model {model.name}: {size.params} parameters, {size.bytes} bytes")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `tf-matcomp` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        {"compress": _compress, "info": _info}[args.command](args)
    except CliError as error:
        print(f"tf-matcomp {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
