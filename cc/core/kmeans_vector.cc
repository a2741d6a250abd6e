// The vector k-means path (block_size > 1): seeded k-means++ initialisation, then Lloyd's
// iterations with parallel assignment and per-chunk partial sums merged in chunk order.
#include <algorithm>
#include <limits>
#include <vector>

#include "cc/core/kmeans_internal.h"

namespace matcomp {
namespace kmeans_internal {
namespace {

// Points per chunk for assignment; partial sums cost chunks·k·dim doubles, so the chunk count
// is also capped to keep that below kPartialSumBudget values.
constexpr int64_t kPointsPerChunk = 4096;
constexpr int64_t kMaxChunks = 16;
constexpr int64_t kPartialSumBudget = int64_t{1} << 24;

// k-means++ (Arthur & Vassilvitskii 2007): each next centroid is a point drawn with probability
// proportional to its squared distance to the nearest centroid so far. Stops early when every
// point coincides with a centroid (fewer distinct points than clusters).
template <typename T>
std::vector<double> KMeansPlusPlus(const T* points, int64_t count, int64_t dim, int64_t k,
                                   uint64_t seed, const ParallelFor& parallel_for) {
  SplitMix64 random(seed);
  const Chunks chunks = FixedChunks(count, kPointsPerChunk, 64);
  std::vector<double> distance(count, std::numeric_limits<double>::infinity());
  std::vector<double> chunk_total(chunks.count);
  std::vector<double> centroids;
  int64_t chosen = static_cast<int64_t>(random.Next() % static_cast<uint64_t>(count));
  while (true) {
    centroids.insert(centroids.end(), points + chosen * dim, points + (chosen + 1) * dim);
    if (static_cast<int64_t>(centroids.size()) == k * dim) break;
    const double* latest = centroids.data() + centroids.size() - dim;
    ForEachChunk(parallel_for, chunks, count, 3 * dim,
                 [&](int64_t chunk, int64_t begin, int64_t end) {
                   double total = 0;
                   for (int64_t i = begin; i < end; ++i) {
                     const double to_latest = SquaredDistance(points + i * dim, latest, dim);
                     distance[i] = std::min(distance[i], to_latest);
                     total += distance[i];
                   }
                   chunk_total[chunk] = total;
                 });
    double total = 0;
    for (double t : chunk_total) total += t;
    if (total == 0) break;  // every point is already a centroid
    // Walk the chunk totals, then the chosen chunk, to the point where the cumulative weight
    // passes the draw; skip points of weight zero (already centroids) to guard against rounding.
    double target = random.NextUnit() * total;
    int64_t chunk = 0;
    while (chunk + 1 < chunks.count && target >= chunk_total[chunk]) target -= chunk_total[chunk++];
    chosen = -1;
    for (int64_t i = chunks.begin(chunk); i < chunks.end(chunk, count); ++i) {
      if (distance[i] > 0) {
        chosen = i;
        if (target < distance[i]) break;
        target -= distance[i];
      }
    }
    if (chosen < 0) {  // rounding sent the draw into an all-zero chunk: take the farthest point
      chosen = std::max_element(distance.begin(), distance.end()) - distance.begin();
    }
  }
  return centroids;
}

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
  std::vector<double> centroids =
      KMeansPlusPlus(points, count, dim, options.num_clusters, options.seed, parallel_for);
  const int64_t k = centroids.size() / dim;
  const int64_t max_chunks =
      std::max<int64_t>(1, std::min(kMaxChunks, kPartialSumBudget / (k * dim)));
  const Chunks chunks = FixedChunks(count, kPointsPerChunk, max_chunks);
  std::vector<int32_t> codes(count), previous;
  std::vector<double> distance(count);
  std::vector<double> sums(chunks.count * k * dim), counts(chunks.count * k);
  AssignVectors(points, count, dim, centroids, parallel_for, codes.data(), distance.data());
  for (int64_t iteration = 0; iteration < options.max_iterations; ++iteration) {
    ForEachChunk(parallel_for, chunks, count, 2 * dim,
                 [&](int64_t chunk, int64_t begin, int64_t end) {
                   double* sum = sums.data() + chunk * k * dim;
                   double* number = counts.data() + chunk * k;
                   std::fill_n(sum, k * dim, 0.0);
                   std::fill_n(number, k, 0.0);
                   for (int64_t i = begin; i < end; ++i) {
                     number[codes[i]] += 1;
                     for (int64_t d = 0; d < dim; ++d) {
                       sum[codes[i] * dim + d] += points[i * dim + d];
                     }
                   }
                 });
    for (int64_t chunk = 1; chunk < chunks.count; ++chunk) {  // merged in chunk order
      for (int64_t j = 0; j < k * dim; ++j) sums[j] += sums[chunk * k * dim + j];
      for (int64_t j = 0; j < k; ++j) counts[j] += counts[chunk * k + j];
    }
    bool reseeded = false;
    for (int64_t j = 0; j < k; ++j) {
      if (counts[j] > 0) {
        for (int64_t d = 0; d < dim; ++d) centroids[j * dim + d] = sums[j * dim + d] / counts[j];
      } else {
        // Empty cluster: restart it on the point farthest from its centroid (used only once).
        // With at least k distinct points such a point is never a centroid already.
        const int64_t farthest =
            std::max_element(distance.begin(), distance.end()) - distance.begin();
        std::copy(points + farthest * dim, points + (farthest + 1) * dim,
                  centroids.begin() + j * dim);
        distance[farthest] = 0;
        reseeded = true;
      }
    }
    previous.swap(codes);
    codes.resize(count);
    AssignVectors(points, count, dim, centroids, parallel_for, codes.data(), distance.data());
    if (!reseeded && codes == previous) break;  // converged: centroids are member means
  }
  return centroids;
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
