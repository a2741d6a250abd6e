"""Matrix compressors: one module per algorithm, all implementing MatrixCompressorInterface."""
from tf_matcomp.compressors.base import (FactorSpec, MatrixCompressorInferface,
                                         MatrixCompressorInterface, compressor_hparams)
from tf_matcomp.compressors.dictionary_learning import DLMatrixCompressor
from tf_matcomp.compressors.kmeans import KmeansMatrixCompressor
from tf_matcomp.compressors.low_rank import LowRankDecompMatrixCompressor
from tf_matcomp.compressors.simhash import SimhashMatrixCompressor

__all__ = ["DLMatrixCompressor", "FactorSpec", "KmeansMatrixCompressor",
           "LowRankDecompMatrixCompressor", "MatrixCompressorInferface",
           "MatrixCompressorInterface", "SimhashMatrixCompressor", "compressor_hparams"]
