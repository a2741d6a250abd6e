// KMeansQuantize entry points: validation, the finiteness check, and the steps every path
// shares (rounding to T, snap_zero, padding, the final assignment).
#include "cc/core/kmeans.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <utility>
#include <vector>

#include "cc/core/kmeans_internal.h"

namespace matcomp {

using kmeans_internal::AssignScalar;
using kmeans_internal::AssignVectors;
using kmeans_internal::Chunks;
using kmeans_internal::FinishCodebook;
using kmeans_internal::FitScalar;
using kmeans_internal::FitVectors;
using kmeans_internal::FixedChunks;
using kmeans_internal::ForEachChunk;

std::string ValidateKMeans(int64_t count, int64_t dim, const KMeansOptions& options) {
  if (options.num_clusters < 1 || options.num_clusters > kMaxClusters) {
    return "`num_clusters` must be in [1, " + std::to_string(kMaxClusters) + "], got " +
           std::to_string(options.num_clusters);
  }
  if (dim < 1) return "`block_size` must be >= 1, got " + std::to_string(dim);
  if (options.num_clusters > kMaxCodebookElements / dim) {
    return "`num_clusters` * `block_size` must be at most " + std::to_string(kMaxCodebookElements) +
           " (the codebook size), got " + std::to_string(options.num_clusters) + " * " +
           std::to_string(dim);
  }
  if (count < 0) return "the number of points must be >= 0, got " + std::to_string(count);
  if (options.max_iterations < 1) {
    return "`max_iterations` must be >= 1, got " + std::to_string(options.max_iterations);
  }
  if (options.method == KMeansMethod::kOptimal && dim != 1) {
    return "`method` \"optimal\" needs `block_size` 1 (it is the exact 1-D clustering), got " +
           std::to_string(dim);
  }
  if (options.method == KMeansMethod::kOptimal && options.num_clusters > kMaxOptimalClusters) {
    return "`method` \"optimal\" supports `num_clusters` up to " +
           std::to_string(kMaxOptimalClusters) + ", got " + std::to_string(options.num_clusters);
  }
  return "";
}

template <typename T>
bool AllInKMeansRange(const T* values, int64_t size, const ParallelFor& parallel_for) {
  std::atomic<bool> in_range{true};
  const Chunks chunks = FixedChunks(size, int64_t{1} << 16, 64);
  ForEachChunk(parallel_for, chunks, size, 1, [&](int64_t, int64_t begin, int64_t end) {
    bool chunk_in_range = true;              // no early exit: keeps the loop vectorisable
    for (int64_t i = begin; i < end; ++i) {  // false for NaN and ±Inf too
      chunk_in_range &= InKMeansRange(static_cast<double>(values[i]));
    }
    if (!chunk_in_range) in_range.store(false, std::memory_order_relaxed);
  });
  return in_range.load();
}

namespace {

// Sets the row nearest the origin (the lowest index among equals) to exactly zero.
void SnapNearestToZero(std::vector<double>& centroids, int64_t dim) {
  const int64_t rows = static_cast<int64_t>(centroids.size()) / dim;
  int64_t nearest = -1;
  double best = std::numeric_limits<double>::infinity();
  for (int64_t row = 0; row < rows; ++row) {
    double norm = 0;
    for (int64_t d = 0; d < dim; ++d) norm += centroids[row * dim + d] * centroids[row * dim + d];
    if (norm < best) best = norm, nearest = row;
  }
  if (nearest >= 0) std::fill_n(centroids.begin() + nearest * dim, dim, 0.0);
}

}  // namespace

namespace kmeans_internal {

template <typename T>
std::vector<double> FinishCodebook(std::vector<double> centroids, int64_t dim,
                                   const KMeansOptions& options, T* codebook) {
  for (double& value : centroids) value = static_cast<double>(static_cast<T>(value));
  if (options.snap_zero) SnapNearestToZero(centroids, dim);
  std::fill_n(codebook, options.num_clusters * dim, T(0));  // rows past the distinct points
  std::transform(centroids.begin(), centroids.end(), codebook,
                 [](double value) { return static_cast<T>(value); });
  return centroids;
}

}  // namespace kmeans_internal

template <typename T, typename Code>
void KMeansQuantize(const T* points, int64_t count, int64_t dim, const KMeansOptions& options,
                    const ParallelFor& parallel_for, T* codebook, Code* codes) {
  std::vector<double> centroids;
  if (count > 0) {
    centroids = dim == 1 ? FitScalar(points, count, options, parallel_for)
                         : FitVectors(points, count, dim, options, parallel_for);
  }
  centroids = FinishCodebook(std::move(centroids), dim, options, codebook);
  if (count == 0) return;
  if (dim == 1) {
    AssignScalar(points, count, centroids, parallel_for, codes);
  } else {
    AssignVectors(points, count, dim, centroids, parallel_for, codes, nullptr);
  }
}

#define MATCOMP_INSTANTIATE_KMEANS(T)                                                           \
  template bool AllInKMeansRange<T>(const T*, int64_t, const ParallelFor&);                     \
  template std::vector<double> kmeans_internal::FinishCodebook<T>(std::vector<double>, int64_t, \
                                                                  const KMeansOptions&, T*);    \
  template void KMeansQuantize<T, uint8_t>(const T*, int64_t, int64_t, const KMeansOptions&,    \
                                           const ParallelFor&, T*, uint8_t*);                   \
  template void KMeansQuantize<T, int32_t>(const T*, int64_t, int64_t, const KMeansOptions&,    \
                                           const ParallelFor&, T*, int32_t*);
MATCOMP_INSTANTIATE_KMEANS(float)
MATCOMP_INSTANTIATE_KMEANS(double)
#undef MATCOMP_INSTANTIATE_KMEANS

}  // namespace matcomp
