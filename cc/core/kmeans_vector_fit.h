// The vector k-means fit (block_size > 1) written once: seeded k-means++ and Lloyd's iterations
// over a backend that owns the points and runs every O(N) pass. The CPU backend is in
// kmeans_vector.cc, the GPU one in cc/kernels/kmeans_gpu.cu.cc; both feed these loops the same
// kind of numbers, so the draws, restarts and stopping rule are one code.
//
// A backend B provides:
//   void CopyPoint(int64_t point, double* row)         row of `point`, as double
//   std::vector<double> SeedDistances(const double* latest)
//        distance[i] = min(distance[i], ‖point i − latest‖²) (the first call sets it), and the
//        totals of distance over the backend's fixed chunks, in chunk order
//   int64_t ChunkBegin(int64_t chunk)
//   WeightSpan ChunkDistances(int64_t chunk)           the chunk's current distances
//   int64_t TakeFarthest()                             argmax of distance (lowest index); its
//                                                      distance becomes 0 (used up)
//   bool Assign(const std::vector<double>& centroids)  codes and distance to the nearest
//        centroid; whether any code changed since the last Assign (true for the first)
//   void ClusterSums(std::vector<double>* sums, std::vector<double>* counts)
//        into the caller's [k][dim] and [k]: per cluster, the sum and the number of the points
//        coded to it
//   bool ok()                                          false after a failure (a device error):
//        the loops stop there, and the caller reports the backend's error
#ifndef TF_MATCOMP_CORE_KMEANS_VECTOR_FIT_H_
#define TF_MATCOMP_CORE_KMEANS_VECTOR_FIT_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cc/core/kmeans.h"
#include "cc/core/kmeans_internal.h"

namespace matcomp {
namespace kmeans_internal {

struct WeightSpan {
  const double* data;
  int64_t size;
};

// The chunk in which the cumulative weight of the chunk totals passes *target (the last one
// takes what rounding carries past the end); *target becomes the offset into that chunk.
inline int64_t ChunkOfDraw(const std::vector<double>& totals, double* target) {
  int64_t chunk = 0;
  const int64_t last = static_cast<int64_t>(totals.size()) - 1;
  while (chunk < last && *target >= totals[chunk]) *target -= totals[chunk++];
  return chunk;
}

// The index in `weights` where their cumulative sum passes `target`, skipping weights of zero
// (points that are centroids already) to guard against rounding: the last positive one when
// rounding carries the draw past the end, -1 when every weight is zero.
inline int64_t PointOfDraw(WeightSpan weights, double target) {
  int64_t chosen = -1;
  for (int64_t i = 0; i < weights.size; ++i) {
    if (weights.data[i] > 0) {
      chosen = i;
      if (target < weights.data[i]) break;
      target -= weights.data[i];
    }
  }
  return chosen;
}

// The point of largest distance (the lowest index among equals), its distance set to 0 (used
// up): what a backend's TakeFarthest does with its distances in host memory.
inline int64_t TakeFarthestOf(std::vector<double>* distance) {
  const int64_t farthest = std::max_element(distance->begin(), distance->end()) - distance->begin();
  (*distance)[farthest] = 0;
  return farthest;
}

// k-means++ (Arthur & Vassilvitskii 2007): each next centroid is a point drawn with probability
// proportional to its squared distance to the nearest centroid so far. Stops early when every
// point coincides with a centroid (fewer distinct points than clusters).
template <typename Backend>
std::vector<double> KMeansPlusPlus(Backend& backend, int64_t count, int64_t dim, int64_t k,
                                   uint64_t seed) {
  SplitMix64 random(seed);
  std::vector<double> centroids;
  int64_t chosen = static_cast<int64_t>(random.Next() % static_cast<uint64_t>(count));
  while (true) {
    centroids.resize(centroids.size() + dim);
    backend.CopyPoint(chosen, centroids.data() + centroids.size() - dim);
    if (static_cast<int64_t>(centroids.size()) == k * dim) break;
    const std::vector<double> totals =
        backend.SeedDistances(centroids.data() + centroids.size() - dim);
    if (!backend.ok()) break;
    double total = 0;
    for (double t : totals) total += t;
    if (total == 0) break;  // every point is already a centroid
    double target = random.NextUnit() * total;
    const int64_t chunk = ChunkOfDraw(totals, &target);
    const int64_t within = PointOfDraw(backend.ChunkDistances(chunk), target);
    // Rounding can send the draw into an all-zero chunk: then the farthest point.
    chosen = within >= 0 ? backend.ChunkBegin(chunk) + within : backend.TakeFarthest();
  }
  return centroids;
}

// Lloyd's iterations from `centroids` [k][dim]: each centroid moves to the mean of its points;
// an empty one restarts on the point farthest from its centroid (each point used once). Stops
// when the codes no longer change (the centroids are then their members' means).
template <typename Backend>
void Lloyd(Backend& backend, int64_t dim, int64_t max_iterations, std::vector<double>* centroids) {
  const int64_t k = static_cast<int64_t>(centroids->size()) / dim;
  std::vector<double> sums(k * dim), counts(k);
  backend.Assign(*centroids);
  for (int64_t iteration = 0; iteration < max_iterations && backend.ok(); ++iteration) {
    backend.ClusterSums(&sums, &counts);
    if (!backend.ok()) break;
    bool restarted = false;
    for (int64_t j = 0; j < k; ++j) {
      double* centroid = centroids->data() + j * dim;
      if (counts[j] > 0) {
        for (int64_t d = 0; d < dim; ++d) centroid[d] = sums[j * dim + d] / counts[j];
      } else {
        // With at least k distinct points the farthest point is never a centroid already.
        backend.CopyPoint(backend.TakeFarthest(), centroid);
        restarted = true;
      }
    }
    const bool changed = backend.Assign(*centroids);
    if (!restarted && !changed) break;
  }
}

// k-means++ then Lloyd: at most num_clusters distinct centroids (row-major, `dim` values each;
// fewer only when the points have fewer distinct rows).
template <typename Backend>
std::vector<double> FitVectorsWith(Backend& backend, int64_t count, int64_t dim,
                                   const KMeansOptions& options) {
  std::vector<double> centroids =
      KMeansPlusPlus(backend, count, dim, options.num_clusters, options.seed);
  Lloyd(backend, dim, options.max_iterations, &centroids);
  return centroids;
}

}  // namespace kmeans_internal
}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_KMEANS_VECTOR_FIT_H_
