"""The numeric limits and constants of tf_matcomp, read from their one definition.

They are defined once, in the C++ core's header `cc/core/constants.h` (installed next to this
module as `constants.h`); this module parses it, so Python, the kernels and `_core` cannot
disagree, and nothing here needs a native library to import.
"""

import ast
import operator
import os
import re
from typing import Dict

_HEADER_NAME = "constants.h"
_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = (
    os.path.join(_HERE, _HEADER_NAME),  # installed: copied into the package by setup.py
    os.path.join(os.path.dirname(_HERE), "cc", "core", _HEADER_NAME),  # a source checkout
)
_DECLARATION = re.compile(
    r"^\s*inline constexpr (?:u?int(?:8|16|32|64)_t|double) (k\w+) = (.+);\s*(?://.*)?$"
)
_OPERATORS = {ast.LShift: operator.lshift, ast.Sub: operator.sub, ast.Add: operator.add}


def _evaluate(node: ast.AST):
    """A literal, or +, -, << of literals (the forms the header promises)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"unsupported constant expression: {ast.dump(node)}")


def parse_header(text: str) -> Dict[str, object]:
    """{kName: value} of every `inline constexpr` declaration in the header's text."""
    values = {}
    for line in text.splitlines():
        match = _DECLARATION.match(line)
        if match:
            expression = match.group(2).replace("int64_t{1}", "1")
            values[match.group(1)] = _evaluate(ast.parse(expression, mode="eval").body)
    return values


def _read() -> Dict[str, object]:
    for path in _CANDIDATES:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return parse_header(f.read())
    raise ImportError(
        f"tf_matcomp: {_HEADER_NAME} not found (looked at {list(_CANDIDATES)}); "
        "the package is incomplete: reinstall it"
    )


ALL: Dict[str, object] = _read()

MAX_UINT8_CLUSTERS: int = ALL["kMaxUint8Clusters"]
MAX_CLUSTERS: int = ALL["kMaxClusters"]
MAX_CODEBOOK_ELEMENTS: int = ALL["kMaxCodebookElements"]
MAX_OPTIMAL_CLUSTERS: int = ALL["kMaxOptimalClusters"]
MAX_KMEANS_MAGNITUDE: float = ALL["kMaxKMeansMagnitude"]
DEFAULT_MAX_ITERATIONS: int = ALL["kDefaultMaxIterations"]
MAX_SIMHASH_BUFFER_ELEMENTS: int = ALL["kMaxSimhashBufferElements"]
MAX_SIMHASH_TILE_WIDTH: int = ALL["kMaxSimhashTileWidth"]
MAX_SIMHASH_TILE_SCRATCH: int = ALL["kMaxSimhashTileScratch"]
SIMHASH_PANEL_ELEMENTS: int = ALL["kSimhashPanelElements"]
HADAMARD_TILE_ELEMENTS: int = ALL["kHadamardTileElements"]
GOLDEN_GAMMA: int = ALL["kGoldenGamma"]
BYTE_SUM_OFFSET: int = ALL["kByteSumOffset"]
PROJECTION_SCALE: float = ALL["kProjectionScale"]
MAX_PROJECTION_INDEX: int = ALL["kMaxProjectionIndex"]
MAX_SEED: int = ALL["kMaxSeed"]
DEFAULT_SEED: int = ALL["kDefaultSeed"]
