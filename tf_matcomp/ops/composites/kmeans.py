"""Composite KMeansQuantize: the pure-TF twin of the native kernel, XLA-compilable.

Differences from the native kernel, all within its documented contract:
  * 1-D (block_size 1): equal-count quantile initialisation for every num_clusters (the kernel
    starts from an optimal clustering of coarsened data when num_clusters <= 256), then exactly
    `max_iterations` Lloyd steps on the sorted values (prefix sums + boundary search); an empty
    cluster keeps its centroid. `method="optimal"` is not available here and runs Lloyd.
  * Vectors: k-means++ drawn with TF's stateless generator (so other draws than the kernel's
    SplitMix64), then exactly `max_iterations` Lloyd steps; empty clusters keep their centroid,
    and with fewer distinct blocks than clusters the codebook repeats blocks instead of padding.
Same output shapes and dtypes; padding with zeros and snap_zero as in the kernel for 1-D.
"""

import tensorflow as tf

from tf_matcomp import constants

# Squared distances must stay finite in float64 (cc/core/constants.h).
MAX_MAGNITUDE = constants.MAX_KMEANS_MAGNITUDE


def kmeans_quantize(
    a: tf.Tensor,
    num_clusters: int,
    block_size: int,
    max_iterations: int,
    seed: int,
    snap_zero: bool,
    code_dtype: tf.DType,
):
    """Returns (codebook [num_clusters, block_size], codes [m, n / block_size])."""
    in_range = tf.reduce_all(tf.abs(tf.cast(a, tf.float64)) <= MAX_MAGNITUDE)  # false for NaN
    with tf.control_dependencies(
        [
            tf.debugging.Assert(
                in_range,
                [
                    f"KMeansQuantize: `a` must contain only finite values of magnitude <= "
                    f"{MAX_MAGNITUDE:g} (k-means is undefined for NaN and infinities and its distances "
                    "overflow beyond)"
                ],
            )
        ]
    ):
        a = tf.identity(a)
    rows, columns = tf.shape(a)[0], tf.shape(a)[1]
    points = tf.reshape(a, [-1, block_size])
    if block_size == 1:
        fit = lambda: _scalar(points[:, 0], num_clusters, max_iterations, snap_zero)  # noqa: E731
    else:
        fit = lambda: _in_safe_range(  # noqa: E731
            lambda p: _vectors(p, num_clusters, max_iterations, seed, snap_zero), points
        )
    empty = lambda: (
        tf.zeros([num_clusters, block_size], a.dtype),  # noqa: E731
        tf.zeros([tf.shape(points)[0]], tf.int32),
    )
    known_size = points.shape.num_elements()
    if known_size is None:
        codebook, codes = tf.cond(tf.size(points) > 0, fit, empty)
    else:  # XLA compiles both branches of a cond, and `fit` cannot take zero points
        codebook, codes = fit() if known_size else empty()
    # Under XLA the Assert above is dropped: an out-of-range `a` then yields a NaN codebook
    # (never a finite one computed from overflowed distances), which the updates refuse.
    codebook = tf.where(in_range, codebook, tf.constant(float("nan"), codebook.dtype))
    return codebook, tf.reshape(tf.cast(codes, code_dtype), [rows, columns // block_size])


def _scalar(x: tf.Tensor, k: int, iterations: int, snap_zero: bool):
    count = tf.size(x, out_type=tf.int64)
    sorted_x = tf.cast(tf.sort(x), tf.float64)
    first = tf.concat([[True], tf.not_equal(sorted_x[1:], sorted_x[:-1])], 0)
    distinct = tf.reduce_sum(tf.cast(first, tf.int64))

    def distinct_values():  # fewer distinct values than clusters: each is a centroid
        rank = tf.cumsum(tf.cast(first, tf.int64)) - 1
        return tf.math.unsorted_segment_sum(tf.where(first, sorted_x, 0.0), rank, k)

    def lloyd():
        origin = sorted_x[0]  # prefix sums relative to the minimum do not cancel
        prefix = tf.concat([[0.0], tf.cumsum(sorted_x - origin)], 0)
        positions = (2 * tf.range(k, dtype=tf.int64) + 1) * count // (2 * k)

        def step(centroids):  # O(k log N): boundaries searched in the sorted values
            boundaries = (centroids[:-1] + centroids[1:]) / 2
            bounds = tf.concat([[0], _count_at_most(sorted_x, boundaries), [count]], 0)
            members = tf.cast(bounds[1:] - bounds[:-1], tf.float64)
            sums = tf.gather(prefix, bounds[1:]) - tf.gather(prefix, bounds[:-1])
            return tf.where(members > 0, origin + sums / tf.maximum(members, 1.0), centroids)

        return _repeat(step, tf.gather(sorted_x, positions), iterations)

    centroids = tf.cond(distinct <= k, distinct_values, lloyd)
    real = tf.range(k, dtype=tf.int64) < tf.minimum(distinct, k)
    # Codes are chosen against the codebook as returned (rounded to x's dtype).
    codebook = tf.cast(centroids, x.dtype)
    if snap_zero:
        nearest = tf.argmin(tf.where(real, tf.abs(codebook), tf.cast(float("inf"), x.dtype)))
        codebook = tf.where(
            tf.equal(tf.range(k, dtype=tf.int64), nearest), tf.zeros_like(codebook), codebook
        )
    rounded = tf.cast(codebook, tf.float64)
    boundaries = tf.where(
        real[1:], (rounded[:-1] + rounded[1:]) / 2, tf.constant(float("inf"), tf.float64)
    )
    codes = tf.searchsorted(boundaries, tf.cast(x, tf.float64), side="left")
    return codebook[:, None], codes


# Above this magnitude the vector path's sums of squared distances (in the input dtype) could
# overflow: float32 values of 3e38 gave an infinite codebook under XLA.
_SAFE_EXPONENT = 32.0  # the magnitude 2^32


def _in_safe_range(fit, points: tf.Tensor):
    """`fit(points)` run on points scaled by a power of two to at most 2^_SAFE_EXPONENT when
    they exceed it, its codebook scaled back. Power-of-two scaling is exact, so k-means of the
    scaled points is k-means of the points; smaller inputs are left as they are. One factor,
    at least 2^-96 for float32 (a normal number: XLA flushes denormals), so that no
    reassociation of the products can underflow."""
    peak = tf.cast(tf.reduce_max(tf.abs(points)), tf.float64)
    log2 = tf.math.log(peak) / tf.math.log(tf.constant(2.0, tf.float64))
    excess = tf.maximum(tf.math.ceil(log2) - _SAFE_EXPONENT, 0.0)
    factor = tf.cast(tf.pow(tf.constant(2.0, tf.float64), -excess), points.dtype)
    codebook, codes = fit(points * factor)
    return codebook / factor, codes


def _vectors(points: tf.Tensor, k: int, iterations: int, seed: int, snap_zero: bool):
    count = tf.shape(points)[0]

    def seed_pair(j):
        return tf.stack([tf.constant(seed, tf.int64), tf.cast(j, tf.int64)])

    def squared_distances(centroids):  # [count, k]
        return (
            tf.reduce_sum(points * points, 1, keepdims=True)
            - 2 * tf.matmul(points, centroids, transpose_b=True)
            + tf.reduce_sum(centroids * centroids, 1)[None, :]
        )

    def plus_plus_step(j, centroids, distance):
        latest = centroids[j - 1]
        distance = tf.minimum(distance, tf.reduce_sum(tf.square(points - latest), 1))
        draw = tf.random.stateless_uniform([1], seed_pair(j), dtype=distance.dtype)
        chosen = tf.searchsorted(tf.cumsum(distance), draw * tf.reduce_sum(distance), side="right")[
            0
        ]
        chosen = tf.minimum(chosen, count - 1)
        centroids = tf.tensor_scatter_nd_update(centroids, [[j]], points[chosen][None])
        return j + 1, centroids, distance

    first = tf.random.stateless_uniform([], seed_pair(0), maxval=count, dtype=tf.int32)
    centroids = tf.tensor_scatter_nd_update(
        tf.zeros([k, points.shape[1]], points.dtype), [[0]], points[first][None]
    )
    distance = tf.fill([count], tf.constant(float("inf"), points.dtype))
    _, centroids, _ = tf.while_loop(
        lambda j, *_: j < k, plus_plus_step, (tf.constant(1), centroids, distance)
    )

    def step(centroids):
        codes = tf.argmin(squared_distances(centroids), 1, output_type=tf.int32)
        sums = tf.math.unsorted_segment_sum(points, codes, k)
        members = tf.math.unsorted_segment_sum(tf.ones([count], points.dtype), codes, k)
        return tf.where(members[:, None] > 0, sums / tf.maximum(members, 1)[:, None], centroids)

    centroids = _repeat(step, centroids, iterations)
    if snap_zero:
        nearest = tf.argmin(tf.reduce_sum(centroids * centroids, 1))
        centroids = tf.where(
            tf.equal(tf.range(k, dtype=tf.int64), nearest)[:, None],
            tf.zeros_like(centroids),
            centroids,
        )
    return centroids, tf.argmin(squared_distances(centroids), 1, output_type=tf.int32)


def _count_at_most(sorted_values: tf.Tensor, queries: tf.Tensor) -> tf.Tensor:
    """int64 number of sorted_values <= each query, by binary search: O(queries · log N).

    (XLA lowers tf.searchsorted to a dense [N, queries] comparison, which made every Lloyd step
    O(N · k) under jit_compile.)
    """
    size = tf.size(sorted_values, out_type=tf.int64)
    static_size = sorted_values.shape[0]
    steps = 64 if static_size is None else max(1, int(static_size).bit_length())
    low = tf.zeros_like(queries, tf.int64)  # invariant: answer in [low, high]
    high = tf.fill(tf.shape(queries), size)
    for _ in range(steps):
        middle = (low + high) // 2
        at_most = tf.gather(sorted_values, tf.minimum(middle, size - 1)) <= queries
        go_right = tf.logical_and(middle < high, at_most)
        low, high = tf.where(go_right, middle + 1, low), tf.where(go_right, high, middle)
    return low


def _repeat(step, centroids: tf.Tensor, iterations: int) -> tf.Tensor:
    """Applies `step` exactly `iterations` times (a while loop with a fixed trip count)."""
    return tf.while_loop(
        lambda _: True, lambda c: (step(c),), (centroids,), maximum_iterations=iterations
    )[0]
