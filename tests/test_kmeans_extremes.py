"""KMeansQuantize (block_size 1) on extreme inputs — denormals, spans of a few denormals, ±max
float32, float64 spread over 450 decades, values a few ulps apart — against NumPy oracles, on
the kernel and on tf_matcomp._core (which must agree byte for byte).

The kernel runs with denormals flushed to zero, as TensorFlow runs every CPU kernel, and _core
does the same; the oracles therefore read denormals as zero. Every float-to-index conversion
of the core (histogram bins, code cells) clamps before converting: an infinite scale over a
span of a few denormals used to make them undefined behaviour (issue #15).
"""

import numpy as np
import pytest

from tf_matcomp import _core, ops

SHAPE = (300, 300)  # 90,000 values: above the exact limit, so the histogram path is tried
TINY = np.float64(5e-324)  # the smallest denormal


def flushed(x):
    """x with denormals read as zero, as the kernel's arithmetic reads them."""
    x = np.asarray(x, np.float64)
    return np.where(np.abs(x) < np.finfo(np.float64).tiny, 0.0, x)


def _cases():
    rng = np.random.default_rng(15)
    signs = rng.choice([-1.0, 1.0], SHAPE)
    fmax = np.finfo(np.float32).max
    return {
        "denormal grid": rng.integers(0, 1000, SHAPE) * TINY,
        "denormals of both signs": rng.integers(-(2**40), 2**40, SHAPE) * TINY,
        "span just above the denormals": rng.uniform(0, 3e-304, SHAPE),
        "normals mixed with denormals": np.where(
            rng.random(SHAPE) < 0.5, rng.standard_normal(SHAPE), rng.integers(-50, 50, SHAPE) * TINY
        ),
        "float64 over 450 decades": signs * 10.0 ** rng.uniform(-300, 150, SHAPE),
        "float64 at the magnitude bound": signs * rng.choice([1e150, 0.5e150, 1.0], SHAPE),
        "float32 at ±max": (signs * rng.choice([fmax, fmax / 2, fmax / 3], SHAPE)).astype(
            np.float32
        ),
        "values a few ulps apart": 1.0 + rng.integers(0, 2000, SHAPE) * np.finfo(np.float64).eps,
    }


CASES = _cases()


def _ulp(x):
    return np.spacing(np.abs(np.asarray(x, np.float64)))


@pytest.mark.parametrize("num_clusters", [16, 256])
@pytest.mark.parametrize("name", list(CASES))
def test_extreme_inputs_against_numpy(name, num_clusters):
    a = CASES[name]
    codebook, codes = (
        t.numpy() for t in ops.kmeans_quantize(a, num_clusters, implementation="native")
    )
    core_codebook, core_codes = _core.kmeans_quantize(a, num_clusters)
    np.testing.assert_array_equal(core_codebook, codebook)  # byte-identical, also for denormals
    np.testing.assert_array_equal(core_codes, codes)
    assert codebook.dtype == a.dtype and codes.shape == a.shape

    x, centroids = flushed(a).ravel(), flushed(codebook[:, 0])
    code = codes.ravel().astype(np.int64)
    used = np.unique(code)
    assert np.all(np.diff(centroids[used]) >= 0)  # the codebook comes out sorted
    distinct = np.unique(x)

    # Nearest centroid (1-D: by |x − c|), up to rounding of the boundaries between neighbours.
    distance = np.abs(x[:, None] - centroids[None, used])
    chosen = np.abs(x - centroids[code])
    assert np.all(chosen <= distance.min(1) + 4 * _ulp(x)), np.max(chosen - distance.min(1))

    if len(distinct) <= num_clusters:  # every distinct value is its own centroid
        np.testing.assert_array_equal(centroids[code], x)
        return
    assert len(used) == num_clusters
    # A Lloyd fixed point: each centroid is the mean of its members, up to the histogram's
    # resolution (a bin on a boundary may be split) and the rounding of the codebook to a.dtype.
    span = x.max() - x.min()
    for j in used:
        members = x[code == j]
        # Means in scaled units, so that sums of values near 1e150 or 3e38 do not overflow.
        scale = np.ldexp(1.0, -int(np.frexp(np.abs(members).max())[1])) if members.any() else 1.0
        mean = (members * scale).mean() / scale
        tolerance = 2 * span / 2**15 + 4 * _ulp(mean) + 8 * _ulp(np.finfo(a.dtype).eps * mean)
        assert abs(centroids[j] - mean) <= tolerance, (j, centroids[j], mean, tolerance)

    # No worse than NumPy's equal-count quantile codebook (an independent, simple quantizer).
    scale = np.ldexp(1.0, -int(np.frexp(np.abs(x).max())[1]))
    quantiles = np.sort(x)[(2 * np.arange(num_clusters) + 1) * len(x) // (2 * num_clusters)]
    baseline = np.abs((x * scale)[:, None] - (quantiles * scale)[None]).min(1)
    error = ((x - centroids[code]) * scale) ** 2
    rounding = ((_ulp(x) * scale) ** 2).sum()  # centroids are rounded to representable values
    assert error.sum() <= (baseline**2).sum() * (1 + 1e-9) + rounding
