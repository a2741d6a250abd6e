"""graph_compression's `kmeans_quantize`: magnitude pruning and block k-means, in NumPy.

Both run tf_matcomp's k-means compressor (`tf_matcomp.compressors.kmeans`: the C++ core, GIL
released). Unlike the peer, neither modifies its input nor reseeds NumPy's global generator.
"""

from typing import List

import numpy as np

from tf_matcomp.compressors import kmeans


def prune(matrix: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """A copy of `matrix` with its ⌊fraction · size⌋ smallest-magnitude entries set to 0."""
    return kmeans.np_prune(np.array(matrix), fraction)


def kmeans_quantize_block(
    matrix: np.ndarray,
    levels: int = 8,
    pruning_factor: float = 0.0,
    block_size: int = 16,
    is_padded: bool = True,
    seed: int = 42,
) -> List[np.ndarray]:
    """k-means of the 1 × block_size blocks of `matrix` [m, n]: [codebook, encoding].

    Args:
      matrix: a 2-D array; block_size must divide its columns.
      levels: number of centroids.
      pruning_factor: fraction in [0, 1) of smallest-magnitude entries zeroed first.
      block_size: block length.
      is_padded: True: the codebook has exactly `levels` rows (zero rows pad it); False: only
        the centroids some block uses, the encoding renumbered to match.
      seed: seed of the initialisation (None: tf_matcomp's default seed).

    Returns:
      codebook [levels or fewer, block_size] (the centroid nearest zero is exactly 0) and
      encoding [m, n / block_size] (uint8 for up to 256 levels, else int32).

    Raises:
      ValueError: pruning_factor outside [0, 1), levels or block_size not a positive int, or
        block_size not dividing the columns.
    """
    if not 0.0 <= pruning_factor < 1.0:
        raise ValueError(f"pruning_factor must be in [0, 1), got {pruning_factor!r}")
    spec = kmeans.KmeansMatrixCompressor.get_default_hparams()
    spec.set_hparam("rank", levels)
    spec.set_hparam("block_size", block_size)
    spec.set_hparam("pruning_fraction", float(pruning_factor))
    compressor = (
        kmeans.KmeansMatrixCompressor(spec)
        if seed is None
        else kmeans.KmeansMatrixCompressor(spec, seed=seed)
    )
    codebook, codes = compressor.static_matrix_compressor(np.asarray(matrix))
    if is_padded:
        return [codebook, codes]
    used = np.unique(codes)
    return [codebook[used], np.searchsorted(used, codes).astype(codes.dtype)]
