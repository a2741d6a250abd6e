"""Compression methods: one module per method (compressor + compressed form), one registry."""

from tf_matcomp.compressors.base import (
    FactorSpec,
    MatrixCompressorInferface,
    MatrixCompressorInterface,
    compressor_hparams,
)
from tf_matcomp.compressors.block_diagonal import BlockDiagonalCompressor, BlockDiagonalForm
from tf_matcomp.compressors.dictionary_learning import DLMatrixCompressor, SparseCodeForm
from tf_matcomp.compressors.form import CompressedForm
from tf_matcomp.compressors.input_output import InputOutputCompressor, InputOutputForm
from tf_matcomp.compressors.kmeans import KMeansForm, KmeansMatrixCompressor
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor, LowRankForm
from tf_matcomp.compressors.method import Method
from tf_matcomp.compressors.mixed_block import MixedBlockCompressor, MixedBlockForm
from tf_matcomp.compressors.pruned_kmeans import PrunedKMeansCompressor, PrunedKMeansForm
from tf_matcomp.compressors.registry import (
    METHODS,
    form_from_config,
    method_for_option,
    method_named,
)
from tf_matcomp.compressors.simhash import SimhashForm, SimhashMatrixCompressor

__all__ = [
    "BlockDiagonalCompressor",
    "BlockDiagonalForm",
    "CompressedForm",
    "DLMatrixCompressor",
    "FactorSpec",
    "InputOutputCompressor",
    "InputOutputForm",
    "KMeansForm",
    "KmeansMatrixCompressor",
    "LowRankDecompMatrixCompressor",
    "LowRankForm",
    "METHODS",
    "MatrixCompressorInferface",
    "MatrixCompressorInterface",
    "Method",
    "MixedBlockCompressor",
    "MixedBlockForm",
    "PrunedKMeansCompressor",
    "PrunedKMeansForm",
    "SimhashForm",
    "SimhashMatrixCompressor",
    "SparseCodeForm",
    "compressor_hparams",
    "form_from_config",
    "method_for_option",
    "method_named",
]
