"""NumPy oracles shared by the simhash tests, written from the definitions (cc/core/counter_rng.h,
cc/core/hadamard.h, cc/core/simhash.h), never from the code under test."""

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(z):
    """The SplitMix64 finalizer on uint64 arrays (wrapping)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unpack(signs, num_columns):
    """Packed signs (bit j % 8 of byte j // 8, least significant first) → ±1 [k, n]."""
    bits = np.unpackbits(np.asarray(signs), axis=1, bitorder="little")[:, :num_columns]
    return np.where(bits == 1, 1.0, -1.0)


def oracle_scales(a, r, s, scale):
    """Scales of the module doc, in float64, for given signs (R·S formed explicitly)."""
    a, rs = a.astype(np.float64), r.astype(np.float64) @ s
    squared = np.sum(rs * rs, axis=0)
    if scale == "least_squares":
        numerator = np.sum(a * rs, axis=0)
    else:
        numerator = np.linalg.norm(a, axis=0) * np.sqrt(squared)
    return np.divide(numerator, squared, out=np.zeros_like(squared), where=squared > 0)
