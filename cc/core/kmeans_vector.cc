// The vector k-means path (block_size > 1) on the CPU: the backend of kmeans_vector_fit.h, with
// parallel passes over fixed chunks whose partial sums are merged in chunk order.
#include <algorithm>
#include <vector>

#include "cc/core/kmeans_internal.h"
#include "cc/core/kmeans_vector_fit.h"

namespace matcomp {
namespace kmeans_internal {
namespace {

// Points per chunk for the passes; Lloyd's partial sums cost chunks·k·dim doubles, so their
// chunk count is also capped to keep that below kPartialSumBudget values.
constexpr int64_t kPointsPerChunk = 4096;
constexpr int64_t kMaxSeedChunks = 64;
constexpr int64_t kMaxSumChunks = 16;
constexpr int64_t kPartialSumBudget = int64_t{1} << 24;

template <typename T>
class CpuBackend {
 public:
  CpuBackend(const T* points, int64_t count, int64_t dim, const ParallelFor& parallel_for)
      : points_(points),
        count_(count),
        dim_(dim),
        parallel_for_(parallel_for),
        seed_chunks_(FixedChunks(count, kPointsPerChunk, kMaxSeedChunks)),
        distance_(count) {}

  bool ok() const { return true; }

  void CopyPoint(int64_t point, double* row) const {
    std::copy(points_ + point * dim_, points_ + (point + 1) * dim_, row);
  }

  std::vector<double> SeedDistances(const double* latest) {
    std::vector<double> totals(seed_chunks_.count);
    const bool first = !seeded_;
    seeded_ = true;
    ForEachChunk(parallel_for_, seed_chunks_, count_, 3 * dim_,
                 [&](int64_t chunk, int64_t begin, int64_t end) {
                   double total = 0;
                   for (int64_t i = begin; i < end; ++i) {
                     const double to_latest = SquaredDistance(points_ + i * dim_, latest, dim_);
                     distance_[i] = first ? to_latest : std::min(distance_[i], to_latest);
                     total += distance_[i];
                   }
                   totals[chunk] = total;
                 });
    return totals;
  }

  int64_t ChunkBegin(int64_t chunk) const { return seed_chunks_.begin(chunk); }

  WeightSpan ChunkDistances(int64_t chunk) const {
    const int64_t begin = seed_chunks_.begin(chunk);
    return {distance_.data() + begin, seed_chunks_.end(chunk, count_) - begin};
  }

  int64_t TakeFarthest() { return TakeFarthestOf(&distance_); }

  bool Assign(const std::vector<double>& centroids) {
    previous_.swap(codes_);
    codes_.resize(count_);
    AssignVectors(points_, count_, dim_, centroids, parallel_for_, codes_.data(), distance_.data());
    return codes_ != previous_;
  }

  void ClusterSums(std::vector<double>* sums, std::vector<double>* counts) {
    const int64_t k = static_cast<int64_t>(counts->size());
    const Chunks chunks =
        FixedChunks(count_, kPointsPerChunk,
                    std::max<int64_t>(1, std::min(kMaxSumChunks, kPartialSumBudget / (k * dim_))));
    partial_sums_.resize(chunks.count * k * dim_);
    partial_counts_.resize(chunks.count * k);
    ForEachChunk(parallel_for_, chunks, count_, 2 * dim_,
                 [&](int64_t chunk, int64_t begin, int64_t end) {
                   double* sum = partial_sums_.data() + chunk * k * dim_;
                   double* number = partial_counts_.data() + chunk * k;
                   std::fill_n(sum, k * dim_, 0.0);
                   std::fill_n(number, k, 0.0);
                   for (int64_t i = begin; i < end; ++i) {
                     number[codes_[i]] += 1;
                     for (int64_t d = 0; d < dim_; ++d) {
                       sum[codes_[i] * dim_ + d] += points_[i * dim_ + d];
                     }
                   }
                 });
    std::copy_n(partial_sums_.begin(), k * dim_, sums->begin());  // merged in chunk order
    std::copy_n(partial_counts_.begin(), k, counts->begin());
    for (int64_t chunk = 1; chunk < chunks.count; ++chunk) {
      for (int64_t j = 0; j < k * dim_; ++j) (*sums)[j] += partial_sums_[chunk * k * dim_ + j];
      for (int64_t j = 0; j < k; ++j) (*counts)[j] += partial_counts_[chunk * k + j];
    }
  }

 private:
  const T* points_;
  const int64_t count_, dim_;
  const ParallelFor& parallel_for_;
  const Chunks seed_chunks_;
  bool seeded_ = false;
  std::vector<double> distance_;
  std::vector<int32_t> codes_, previous_;
  std::vector<double> partial_sums_, partial_counts_;
};

}  // namespace

template <typename T, typename Code>
void AssignVectors(const T* points, int64_t count, int64_t dim,
                   const std::vector<double>& centroids, const ParallelFor& parallel_for,
                   Code* codes, double* distances) {
  const int64_t k = centroids.size() / dim;
  parallel_for(count, 3 * dim * k, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double best_distance;
      codes[i] = static_cast<Code>(
          NearestCentroid(points + i * dim, centroids.data(), k, dim, &best_distance));
      if (distances != nullptr) distances[i] = best_distance;
    }
  });
}

template <typename T>
std::vector<double> FitVectors(const T* points, int64_t count, int64_t dim,
                               const KMeansOptions& options, const ParallelFor& parallel_for) {
  CpuBackend<T> backend(points, count, dim, parallel_for);
  return FitVectorsWith(backend, count, dim, options);
}

#define MATCOMP_INSTANTIATE_VECTORS(T)                                                            \
  template std::vector<double> FitVectors<T>(const T*, int64_t, int64_t, const KMeansOptions&,    \
                                             const ParallelFor&);                                 \
  template void AssignVectors<T, uint8_t>(const T*, int64_t, int64_t, const std::vector<double>&, \
                                          const ParallelFor&, uint8_t*, double*);                 \
  template void AssignVectors<T, int32_t>(const T*, int64_t, int64_t, const std::vector<double>&, \
                                          const ParallelFor&, int32_t*, double*);
MATCOMP_INSTANTIATE_VECTORS(float)
MATCOMP_INSTANTIATE_VECTORS(double)
#undef MATCOMP_INSTANTIATE_VECTORS

}  // namespace kmeans_internal
}  // namespace matcomp
