"""graph_compression's `compression_wrapper`: `get_apply_compression(spec, global_step)`.

The method comes from the registry (`tf_matcomp.compressors.registry`: 0 and 1 low-rank, 2
simhash, 3 dictionary learning, 4 k-means; any other option is a ValueError). The compressor and
ApplyCompression classes are looked up when called, as attributes of this package's modules
(`compression_op.LowRankDecompMatrixCompressor`, `simhash_compression_op.SimhashApplyCompression`,
...), so `mock.patch.object` on those modules takes effect, as in the peer's own tests.
"""

from types import ModuleType
from typing import Dict, Tuple

from tf_matcomp import compression_wrapper as _compression_wrapper
from tf_matcomp.compression_lib import compression_op, dl_compression_op, simhash_compression_op
from tf_matcomp.compressors import registry
from tf_matcomp.compressors.method import Method
from tf_matcomp.hparams import HParams

# Registry method name → (module, attribute) of the class graph_compression's wrapper uses.
_COMPRESSOR_CLASSES: Dict[str, Tuple[ModuleType, str]] = {
    "lowrank": (compression_op, "LowRankDecompMatrixCompressor"),
    "simhash": (simhash_compression_op, "SimhashMatrixCompressor"),
    "dictionary": (dl_compression_op, "DLMatrixCompressor"),
    "kmeans": (simhash_compression_op, "KmeansMatrixCompressor"),
}
_APPLY_CLASS_MODULES: Dict[str, ModuleType] = {
    "SimhashApplyCompression": simhash_compression_op,
    "DLApplyCompression": dl_compression_op,
    "ApplyCompression": compression_op,
}


def compressor_class_for(method: Method) -> type:
    """The compressor class for `method`, looked up now (the registry's for a method this
    package has no name for)."""
    module, name = _COMPRESSOR_CLASSES.get(method.name, (None, None))
    return getattr(module, name) if module is not None else method.compressor_class


def get_apply_compression(compression_op_spec: HParams, global_step=None, variable_factory=None):
    """The ApplyCompression for `compression_op_spec.compression_option` (classes looked up
    when called; see the module doc). ValueError for an unknown option or a bad hparam."""
    method = registry.method_for_option(compression_op_spec.compression_option)
    apply_name = _compression_wrapper.apply_class_name(method.name)
    return _compression_wrapper.build_apply_compression(
        compression_op_spec,
        global_step,
        compressor_class_for(method),
        getattr(_APPLY_CLASS_MODULES[apply_name], apply_name),
        variable_factory,
    )
