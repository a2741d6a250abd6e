"""`tf-matcomp`: compress a trained Keras model's layers, or show what a model holds.

    tf-matcomp compress MODEL.keras --method lowrank --ratio 4 -o OUT.keras
    tf-matcomp info MODEL.keras
    tf-matcomp tflite MODEL.keras -o OUT.tflite

`compress` replaces the chosen layers (every compressible one by default: Dense, EinsumDense,
Embedding, Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D) by their compressed form, computed
once from the trained kernel, prints a per-layer report (shape, k, relative error, bytes before
and after) and saves the stripped model, which holds only the compressed form
(`--keep-training-form` saves the trainable form instead, to fine-tune). `--ratio R` (default
4) asks each layer's method for about R times fewer bytes; `--rank` sets the method's own
hparam instead. A layer that would grow is an error unless `--force`.
`info` lists every layer with a kernel and how it is stored; its rel.err column is
‖A − Â‖ / ‖A‖ against the dense kernel A a training-form layer keeps (once alpha is 0, A is
frozen where the factors were computed from it, so the figure then shows how far fine-tuning
moved the factors, not an error of the model). `tflite` writes the model (stripped first
when it is in training form) as a `.tflite` of TFLite builtin ops without tensor names
(`tf_matcomp.keras.to_tflite`). Errors print one line on stderr and exit with
status 1 (2 for a bad command line). Also runs as `python -m tf_matcomp.cli`.

TensorFlow is imported only once a command runs: `--help` and command-line errors are fast
and print none of TensorFlow's start-up lines.
"""

import argparse
import os
import stat
import sys
import warnings
import zipfile
from typing import List, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is ever imported

DEFAULT_RATIO = 4.0


class CliError(Exception):
    """An error to report as one line on stderr."""


class _MethodNames:
    """The method registry's names as `--method` choices, read only when a value is checked
    (the registry imports TensorFlow; `--help` must not)."""

    __hash__ = None

    @staticmethod
    def _names() -> List[str]:
        from tf_matcomp.compressors import registry

        return sorted(registry.METHODS)

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __eq__(self, other) -> bool:
        return list(self) == list(other)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Formats `--method`'s help without reading its choices (that would import TF)."""

    def _expand_help(self, action):
        if isinstance(action.choices, _MethodNames):
            return action.help
        return super()._expand_help(action)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf-matcomp", description=__doc__, formatter_class=_HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compress = commands.add_parser(
        "compress", help="compress a saved model's layers", formatter_class=_HelpFormatter
    )
    compress.add_argument("model", metavar="MODEL.keras")
    compress.add_argument("-o", "--output", required=True, metavar="OUT.keras")
    compress.add_argument(
        "--method",
        default="lowrank",
        choices=_MethodNames(),
        metavar="METHOD",
        help="a name of the method registry: lowrank (default), simhash, dictionary, kmeans, "
        "inout, block, mixedblock",
    )
    size = compress.add_mutually_exclusive_group()
    size.add_argument(
        "--ratio",
        type=float,
        default=None,
        help=f"target bytes ratio dense / compressed per layer, any method (default "
        f"{DEFAULT_RATIO:g} unless --rank is given)",
    )
    size.add_argument(
        "--rank",
        type=int,
        default=None,
        help="the method's own `rank` hparam, as graph_compression means it: a compression "
        "factor x100 for lowrank/simhash/dictionary, the number of centroids for kmeans (inout, "
        "block and mixedblock have no rank: --ratio sizes them)",
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
        help="layers to compress (default: every compressible one)",
    )
    compress.add_argument(
        "--spec", default="", metavar="K=V,...", help="further hparams, e.g. use_tpu=true"
    )
    compress.add_argument(
        "--force", action="store_true", help="compress layers even where they would grow"
    )
    compress.add_argument(
        "--keep-training-form",
        action="store_true",
        help="save the trainable compressed layers (with the dense kernel, alpha=0) "
        "instead of the stripped inference form",
    )

    info = commands.add_parser("info", help="show which layers are compressed and how")
    info.add_argument("model", metavar="MODEL.keras")

    tflite = commands.add_parser(
        "tflite", help="convert a model (stripped first) to .tflite with builtin ops only"
    )
    tflite.add_argument("model", metavar="MODEL.keras")
    tflite.add_argument("-o", "--output", required=True, metavar="OUT.tflite")
    return parser


def _check_model_path(path: str) -> None:
    """Fails before TensorFlow is imported (its start-up log lines stay off stderr)."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file")
    if not path.endswith(".keras"):
        raise CliError(f"{path}: not a .keras file (save models with model.save('x.keras'))")
    status = os.stat(path)  # follows links: a link to /dev/zero is a device, not a file
    if not stat.S_ISREG(status.st_mode):  # a FIFO would block, a device never end
        raise CliError(f"{path}: not a regular file")
    if status.st_size == 0:
        raise CliError(f"{path}: empty file (not a .keras archive)")
    if not zipfile.is_zipfile(path):
        raise CliError(f"{path}: corrupt .keras file (not a zip archive)")


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
        raise CliError(f"{path}: corrupt or not a loadable Keras model ({first_line})") from error


def _spec_string(args) -> str:
    from tf_matcomp.compressors import registry
    from tf_matcomp.keras import ONE_SHOT_SCHEDULE

    method = registry.method_named(args.method)
    parts = [f"compression_option={method.option}", ONE_SHOT_SCHEDULE]
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
    ratio = args.ratio if args.ratio is not None or args.rank is not None else DEFAULT_RATIO
    model = _load(args.model)
    from tf_matcomp import keras as matcomp_keras

    layers: Optional[List[str]] = None
    if args.layers:
        layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    try:
        with warnings.catch_warnings():
            if not args.force:
                warnings.simplefilter("error", matcomp_keras.LayerGrowthWarning)
            compressed = matcomp_keras.compress_model(
                model, _spec_string(args), layers=layers, compression_ratio=ratio
            )
        for layer in matcomp_keras.compressed_layers(compressed):
            layer.run_alpha_update(0)  # the one-shot schedule: factors now, alpha to 0
        rows = matcomp_keras.compression_report(compressed)
        out = compressed if args.keep_training_form else matcomp_keras.strip_compression(compressed)
    except matcomp_keras.LayerGrowthWarning as warning:
        raise CliError(f"{warning} (--force compresses it anyway)") from warning
    except ValueError as error:
        raise CliError(str(error)) from error
    out.save(args.output)
    print(matcomp_keras.format_report(rows))
    before = matcomp_keras.model_size(model)
    after = matcomp_keras.model_size(out)
    print(
        f"model: {before.params} -> {after.params} parameters, {before.bytes} -> "
        f"{after.bytes} bytes; compression_ratio {matcomp_keras.compression_ratio(out):.2f}; "
        f"saved {args.output}"
    )


def _info(args) -> None:
    model = _load(args.model)
    from tf_matcomp import keras as matcomp_keras

    rows = matcomp_keras.compression_report(model, include_dense=True)
    if not rows:
        raise CliError(f"{args.model}: the model has no layer with a kernel of a known kind")
    print(matcomp_keras.format_report(rows))
    size = matcomp_keras.model_size(model)
    print(
        f"model {model.name}: {size.params} parameters, {size.bytes} bytes; "
        f"compression_ratio {matcomp_keras.compression_ratio(model):.2f}\n"
        "rel.err: |A - A_hat| / |A| against the dense kernel A a training-form layer keeps "
        "(see tf-matcomp --help)"
    )


def _tflite(args) -> None:
    _check_model_path(args.model)
    if not args.output.endswith(".tflite"):
        raise CliError(f"-o {args.output}: the output must end in .tflite")
    model = _load(args.model)
    from tf_matcomp import keras as matcomp_keras

    try:
        flatbuffer = matcomp_keras.to_tflite(model, args.output)
    except ValueError as error:
        raise CliError(str(error)) from error
    print(f"saved {args.output}: {len(flatbuffer)} bytes, TFLite builtin ops only")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `tf-matcomp` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        {"compress": _compress, "info": _info, "tflite": _tflite}[args.command](args)
    except CliError as error:
        print(f"tf-matcomp {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
