"""The limits and constants are defined once (cc/core/constants.h) and agree everywhere: the
header as Python parses it, `_core.constants()`, the op library's MatcompConstantsJson(), and
the Python modules that use them."""

import ctypes
import json
import os

import pytest

from tf_matcomp import _core, compressors, constants, ops
from tf_matcomp.ops import _loader
from tf_matcomp.ops.composites import counter_rng
from tf_matcomp.ops.composites import kmeans as kmeans_composite

HEADER = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cc", "core", "constants.h"
)


def test_the_header_parses_to_the_python_constants():
    with open(HEADER, encoding="utf-8") as f:
        parsed = constants.parse_header(f.read())
    assert parsed == constants.ALL
    assert len(parsed) >= 15  # a parser that silently skipped lines would find fewer
    assert parsed["kMaxSeed"] == (1 << 63) - 1
    assert parsed["kMaxProjectionIndex"] == (1 << 31) - 1
    assert parsed["kMaxSimhashTileScratch"] == 1 << 26
    assert parsed["kGoldenGamma"] == 0x9E3779B97F4A7C15
    assert parsed["kMaxKMeansMagnitude"] == 1e150


def test_the_core_module_reports_the_same_constants():
    assert _core.constants() == constants.ALL


def test_the_op_library_reports_the_same_constants():
    library = _loader.native_library()
    assert library.module is not None, library.reason
    report = ctypes.CDLL(library.path).MatcompConstantsJson
    report.restype = ctypes.c_char_p
    assert json.loads(report()) == constants.ALL


def test_python_modules_take_their_limits_from_the_constants():
    assert ops.kmeans.MAX_CLUSTERS == constants.MAX_CLUSTERS
    assert ops.kmeans.MAX_UINT8_CLUSTERS == constants.MAX_UINT8_CLUSTERS
    assert ops.kmeans.code_dtype_for(constants.MAX_UINT8_CLUSTERS).name == "uint8"
    assert ops.kmeans.code_dtype_for(constants.MAX_UINT8_CLUSTERS + 1).name == "int32"
    assert ops.simhash.MAX_TILE_SCRATCH == constants.MAX_SIMHASH_TILE_SCRATCH
    assert ops.simhash.MAX_INDEX == constants.MAX_PROJECTION_INDEX
    assert counter_rng.GOLDEN_GAMMA == constants.GOLDEN_GAMMA
    assert kmeans_composite.MAX_MAGNITUDE == constants.MAX_KMEANS_MAGNITUDE
    assert compressors.SimhashMatrixCompressor().seed == constants.DEFAULT_SEED


@pytest.mark.parametrize(
    "line",
    [
        "inline constexpr int64_t kX = 1 * 2;",
        "inline constexpr int64_t kX = foo(3);",
    ],
)
def test_the_parser_refuses_forms_the_header_does_not_promise(line):
    with pytest.raises(ValueError, match="unsupported constant expression"):
        constants.parse_header(line)
