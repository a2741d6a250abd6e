"""The one registry of compression methods: option number → `Method`.

Everything that depends on the method — the wrapper (`get_apply_compression`), `CompressionOp`
(which factor is `b_matrix_tfvar`, the factored products), the Keras layers, strip and the
size report, the CLI's `--method` and the demo — asks this module, never a chain of
isinstance checks over compressors.

Adding a method is one module in `tf_matcomp/compressors/` plus one row in `_METHODS`. The
module provides:

  * a compressor, subclass of `base.MatrixCompressorInterface`: `factor_names`, `form(shape,
    dtype)`, `factor_trainable()`, `static_matrix_compressor` (NumPy) and
    `tpu_matrix_compressor` (TF ops that compile under jit_compile), `validate_shape` if
    it cannot take every matrix, and `hparams_for_ratio` (a method-neutral
    `compression_ratio` → its own hparams) unless the default bisection over `rank` fits;
    a method whose factors are recomputed during training on a schedule of its own (pruning +
    k-means: its mask updates) also returns that rule from `recompression_schedule()` and
    implements `static_recompress` / `tpu_recompress` (the update engines call them);
  * a form, subclass of `form.CompressedForm` with a new `kind`: `variables()` (stored names,
    shapes, dtypes, in factor order), `matrix(arrays)` (Â, computed once, here), `label()`,
    `get_config()` if it has parameters, and the factored `matmul` / `transposed_matmul` /
    `gather_rows` / `conv` / `blend` where they beat going through Â, and `low_rank_factors`
    if Â is a product of two dense factors (strip then uses stock Keras layers), and
    `deployed_form` if what a deployed layer stores depends on the arrays' values (its forms
    then go in the Method's `deployed_form_classes`);
  * `METHOD = Method(...)`: its name, label, option numbers, compressor overrides and, if
    its factors are not (B, C), which factor each CompressionOp attribute names.
"""

from typing import Dict, Optional, Tuple

from tf_matcomp.compressors import (
    block_diagonal,
    dictionary_learning,
    input_output,
    kmeans,
    low_rank,
    mixed_block,
    pruned_kmeans,
    simhash,
)
from tf_matcomp.compressors.form import CompressedForm
from tf_matcomp.compressors.method import Method

_METHODS: Tuple[Method, ...] = (
    low_rank.METHOD,
    simhash.METHOD,
    dictionary_learning.METHOD,
    kmeans.METHOD,
    pruned_kmeans.METHOD,
    input_output.METHOD,
    block_diagonal.METHOD,
    mixed_block.METHOD,
)

METHODS: Dict[str, Method] = {method.name: method for method in _METHODS}
_BY_OPTION: Dict[int, Method] = {option: method for method in _METHODS for option in method.options}
_FORM_CLASSES: Dict[str, type] = {
    form_class.kind: form_class
    for method in _METHODS
    for form_class in (method.form_class,) + method.deployed_form_classes
}

SUPPORTED_COMPRESSION_OPTIONS: Tuple[int, ...] = tuple(sorted(_BY_OPTION))


def describe_options() -> str:
    """ "0 and 1 low-rank, 2 simhash, ..." for error messages and help texts."""
    return ", ".join(
        f"{' and '.join(str(o) for o in method.options)} {method.label}" for method in _METHODS
    )


def method_for_option(option) -> Method:
    """The method a `compression_option` selects; ValueError for any other value."""
    try:
        method = _BY_OPTION.get(option)
    except TypeError:  # unhashable
        method = None
    if method is None:
        raise ValueError(
            f"compression_option must be one of {SUPPORTED_COMPRESSION_OPTIONS} "
            f"({describe_options()}), got {option!r}"
        )
    return method


def method_named(name: str) -> Method:
    """The method called `name` (see `METHODS`); ValueError for any other name."""
    if name not in METHODS:
        raise ValueError(f"unknown compression method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]


def method_for_compressor(compressor) -> Optional[Method]:
    """The method whose compressor class `compressor` is an instance of; None for a compressor
    of no registered method (a user's own MatrixCompressorInterface)."""
    for method in _METHODS:
        if isinstance(compressor, method.compressor_class):
            return method
    return None


def form_from_config(config: dict, implementation: str = "auto") -> CompressedForm:
    """Rebuilds a CompressedForm from its `get_config()` dict."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in _FORM_CLASSES:
        raise ValueError(f"form: unknown kind {kind!r}; known: {sorted(_FORM_CLASSES)}")
    return _FORM_CLASSES[kind](**config, implementation=implementation)
