// k-means quantization of a matrix viewed as `count` points of `dim` consecutive values.
//
// Plain C++ over raw row-major buffers; parallelism is injected (cc/core/parallel.h). Results
// depend only on the input and the options, never on the thread count: parallel work is split
// into fixed chunks whose partial sums are merged in chunk order.
//
// Output rules shared by every path:
//   * The codebook has exactly `num_clusters` rows. When the input has fewer distinct points d
//     than clusters (including d = 0 for an empty input), rows 0..d-1 hold the distinct points,
//     rows d.. are zero (padding) and no code refers to them.
//   * codes[i] is the index of the centroid nearest to point i (ties: the lowest index).
//   * With snap_zero the centroid nearest the origin is set to exactly zero (as the peer
//     graph_compression does), and points are assigned to the snapped codebook.
//
// dim == 1 (see kmeans_scalar.cc) uses the 1-D structure and never does O(N·k) distance work:
// the values are reduced to sorted weighted atoms (the distinct values, or for more than
// kScalarExactLimit values a kScalarHistogramBins-bin histogram with per-bin counts and sums,
// unless its within-bin spread is not negligible next to the quantization error, then the
// distinct values again), Lloyd's iterations run on the atoms with prefix sums and
// binary-searched boundaries (starting from the optimal clustering of a 1,024-run coarsening of
// the atoms when num_clusters <= kMaxOptimalClusters, else from equal-count quantiles), and
// points are coded against the boundaries between the sorted centroids in O(1) each (a grid
// over the boundaries); the codebook comes out sorted ascending. kOptimal replaces Lloyd by the
// exact optimal clustering of the atoms (dynamic programming; more than kMaxOptimalAtoms atoms are
// first merged into that many runs of consecutive atoms).
//
// dim > 1 (see kmeans_vector.cc) uses seeded k-means++ initialisation and Lloyd's iterations;
// empty clusters are re-seeded with the points farthest from their centroids.
#ifndef TF_MATCOMP_CORE_KMEANS_H_
#define TF_MATCOMP_CORE_KMEANS_H_

#include <cstdint>
#include <string>

#include "cc/core/constants.h"
#include "cc/core/parallel.h"

namespace matcomp {

// The limits (kMaxClusters, kMaxUint8Clusters, kMaxCodebookElements, kMaxOptimalClusters,
// kMaxOptimalAtoms, kMaxKMeansMagnitude) are in cc/core/constants.h.
// Up to this many values the 1-D path clusters the exact distinct values; above it a
// kScalarHistogramBins-bin histogram, unless that histogram is too coarse for the data.
constexpr int64_t kScalarExactLimit = int64_t{1} << 16;
constexpr int64_t kScalarHistogramBins = int64_t{1} << 15;

enum class KMeansMethod {
  kLloyd,    // Lloyd's iterations (any dim).
  kOptimal,  // Exact optimal 1-D clustering of the atoms (dim == 1 only).
};

struct KMeansOptions {
  int64_t num_clusters = 1;    // in [1, kMaxClusters]
  int64_t max_iterations = 1;  // >= 1: Lloyd's iterations; stops earlier once codes are stable
  uint64_t seed = 0;           // k-means++ seed (dim > 1); the 1-D path needs none
  bool snap_zero = false;
  KMeansMethod method = KMeansMethod::kLloyd;
};

// Returns an empty string when (count, dim, options) are valid, else why not, naming the
// argument (`num_clusters`, `block_size`, `max_iterations`, `method`).
std::string ValidateKMeans(int64_t count, int64_t dim, const KMeansOptions& options);

// True when every value is finite with |value| <= kMaxKMeansMagnitude (k-means is undefined for
// NaN and infinities, and overflows beyond the bound).
template <typename T>
bool AllInKMeansRange(const T* values, int64_t size, const ParallelFor& parallel_for);

// Clusters points[count][dim] (row-major, AllInKMeansRange, ValidateKMeans passed) into
// codebook[num_clusters][dim] and codes[count]. Code is uint8_t (num_clusters <= 256) or int32_t.
template <typename T, typename Code>
void KMeansQuantize(const T* points, int64_t count, int64_t dim, const KMeansOptions& options,
                    const ParallelFor& parallel_for, T* codebook, Code* codes);

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_KMEANS_H_
