// The device-neutral steps of k-means (cc/core/kmeans.h has the algorithm): the range check,
// squared distances, histogram binning and the O(1) boundary search that codes 1-D values.
// MATCOMP_HOST_DEVICE, so the CPU kernel (cc/core/kmeans*.cc) and the GPU kernels
// (cc/kernels/kmeans_gpu.cu.cc) run this very code, and tests/device_math_test.cc checks it on
// any machine.
#ifndef TF_MATCOMP_CORE_KMEANS_MATH_H_
#define TF_MATCOMP_CORE_KMEANS_MATH_H_

#include <math.h>

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/kmeans.h"

namespace matcomp {

// False for NaN, ±Inf and |value| > kMaxKMeansMagnitude.
MATCOMP_HOST_DEVICE inline bool InKMeansRange(double value) {
  return fabs(value) <= kMaxKMeansMagnitude;
}

// ‖point − centroid‖² in double, summed in dimension order.
template <typename T>
MATCOMP_HOST_DEVICE inline double SquaredDistance(const T* point, const double* centroid,
                                                  int64_t dim) {
  double total = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const double diff = static_cast<double>(point[d]) - centroid[d];
    total += diff * diff;
  }
  return total;
}

// The index of the centroid (row of centroids[k][dim]) nearest to `point`, ties to the lowest
// index; *distance receives the squared distance to it.
template <typename T>
MATCOMP_HOST_DEVICE inline int64_t NearestCentroid(const T* point, const double* centroids,
                                                   int64_t k, int64_t dim, double* distance) {
  int64_t best = 0;
  double best_distance = INFINITY;
  for (int64_t j = 0; j < k; ++j) {
    const double d = SquaredDistance(point, centroids + j * dim, dim);
    if (d < best_distance) best_distance = d, best = j;
  }
  *distance = best_distance;
  return best;
}

// floor(x) clamped into [0, last], NaN to 0. Converting a double to an integer is undefined
// when it is NaN or out of range (an infinite scale over a denormal span gives both), so every
// float-to-index conversion of the k-means code goes through here and clamps first.
MATCOMP_HOST_DEVICE inline int64_t ClampedIndex(double x, int64_t last) {
  const double positive = x > 0 ? x : 0.0;  // NaN to 0 too; both selects compile branch-free
  const double top = static_cast<double>(last);
  return static_cast<int64_t>(positive < top ? positive : top);
}

// Whether a `bins`-bin histogram of [low, high] has a positive bin width and a finite scale
// bins / (high − low); spans of a few denormals do not (their values are clustered exactly).
MATCOMP_HOST_DEVICE inline bool HistogramResolves(double low, double high, int64_t bins) {
  const double span = high - low;
  return span > 0 && span / bins > 0 && isfinite(bins / span);
}

// The bin of x in a `bins`-bin histogram of [low, high], scale = bins / (high − low).
MATCOMP_HOST_DEVICE inline int64_t HistogramBinOf(double x, double low, double scale,
                                                  int64_t bins) {
  return ClampedIndex((x - low) * scale, bins - 1);
}

// The GPU histogram sums each value's offset from its bin's left edge as an integer, in units of
// width · 2^-kHistogramFixedBits, so that its atomics are exact and the sums do not depend on
// the order the values arrive in. An offset is at most one width (clamped to [0, 1] widths
// against rounding), so 2^31 values sum to at most 2^63 units: no overflow in uint64.
constexpr int kHistogramFixedBits = 32;
constexpr double kHistogramFixedScale = static_cast<double>(uint64_t{1} << kHistogramFixedBits);

MATCOMP_HOST_DEVICE inline uint64_t HistogramFixedOffset(double x, double low, int64_t bin,
                                                         double width) {
  double fraction = (x - (low + bin * width)) / width;
  fraction = fraction > 0 ? (fraction < 1 ? fraction : 1) : 0;  // NaN to 0 as well
  return static_cast<uint64_t>(fraction * kHistogramFixedScale);
}

// The sum of the offsets that HistogramFixedOffset encoded, back in value units.
MATCOMP_HOST_DEVICE inline double HistogramOffsetSum(uint64_t fixed_sum, double width) {
  return static_cast<double>(fixed_sum) * width / kHistogramFixedScale;
}

// code(x) = the number of boundaries (midpoints between neighbouring sorted centroids) below x,
// ties to the lower centroid, in O(1): a uniform grid of `cells` cells over the boundaries;
// cell() is monotone in x, so boundaries in lower cells are below x, those in higher cells
// above, and only the few in x's own cell need comparing. This holds for any rounding of
// cell(), as boundaries are placed in cells by the same function. Views of the tables that
// kmeans_internal::ScalarCodeTable builds (host memory, or copies on the device).
struct ScalarCodeView {
  const double* boundary;  // [k − 1] ascending
  const int32_t* below;    // [cells + 1] boundaries in the cells before each cell
  const double* first;     // [cells] the lowest boundary in each cell (+inf when none)
  int64_t cells;
  double base, scale;

  MATCOMP_HOST_DEVICE int64_t Cell(double x) const {
    return ClampedIndex((x - base) * scale, cells - 1);  // scale may be +inf: a tiny span
  }

  MATCOMP_HOST_DEVICE int32_t Code(double x) const {
    const int64_t cell = Cell(x);
    int32_t code = below[cell] + (x > first[cell]);
    for (int32_t j = below[cell] + 1; j < below[cell + 1]; ++j) code += x > boundary[j];
    return code;
  }
};

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_KMEANS_MATH_H_
