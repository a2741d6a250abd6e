// Pieces shared by the k-means sources (kmeans.cc, kmeans_scalar.cc, kmeans_vector.cc); not a
// public interface.
#ifndef TF_MATCOMP_CORE_KMEANS_INTERNAL_H_
#define TF_MATCOMP_CORE_KMEANS_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "cc/core/kmeans.h"
#include "cc/core/kmeans_math.h"
#include "cc/core/parallel.h"

namespace matcomp {
namespace kmeans_internal {

// A split of [0, total) into `count` contiguous chunks of `size` items (the last may be
// shorter). It depends only on the sizes, never on the thread count, so partial sums kept per
// chunk and merged in chunk order give bit-identical results on any number of threads.
struct Chunks {
  int64_t count;
  int64_t size;

  int64_t begin(int64_t chunk) const { return chunk * size; }
  int64_t end(int64_t chunk, int64_t total) const { return std::min(total, (chunk + 1) * size); }
};

inline Chunks FixedChunks(int64_t total, int64_t min_chunk_size, int64_t max_chunks) {
  const int64_t wanted = (total + min_chunk_size - 1) / min_chunk_size;
  const int64_t count = std::max<int64_t>(1, std::min(max_chunks, wanted));
  return {count, std::max<int64_t>(1, (total + count - 1) / count)};
}

using ChunkWork = std::function<void(int64_t chunk, int64_t begin, int64_t end)>;

// Runs work(chunk, begin, end) for every chunk of `chunks`, in parallel.
inline void ForEachChunk(const ParallelFor& parallel_for, const Chunks& chunks, int64_t total,
                         int64_t cost_per_item, const ChunkWork& work) {
  parallel_for(chunks.count, cost_per_item * chunks.size, [&](int64_t first, int64_t last) {
    for (int64_t chunk = first; chunk < last; ++chunk) {
      work(chunk, chunks.begin(chunk), chunks.end(chunk, total));
    }
  });
}

// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator, identical on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double NextUnit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Sorted distinct values (or histogram bin means) with how many input values each stands for.
struct Atoms {
  std::vector<double> value;   // strictly ascending
  std::vector<double> weight;  // > 0
};

// One bin of the kScalarHistogramBins-bin histogram; the offsets are taken from the bin's left
// edge (no cancellation). The CPU fills it in cc/core/kmeans_scalar.cc, the GPU kernel on the
// device (cc/kernels/kmeans_gpu.cu.cc).
struct HistogramBin {
  double count = 0, offset_sum = 0;
};

// The sorted distinct values of values[0..count).
template <typename T>
Atoms DistinctValues(const T* values, int64_t count);

// The non-empty bins of a histogram of `count` values over [low, high] (low < high) as atoms,
// valued at the mean of their members. False, leaving `atoms` empty, when they do not serve:
// the bins may be too coarse for `num_clusters` levels (the within-bin variance bound width²/4
// exceeds 1% of variance/k², a rough lower bound, for smooth densities, of the k-level
// quantization error), or there are at most num_clusters of them (then the exact distinct
// values are needed: each becomes its own centroid).
bool AtomsFromHistogram(const std::vector<HistogramBin>& bins, int64_t count, double low,
                        double high, int64_t num_clusters, Atoms* atoms);

// 1-D clustering of the atoms: at most num_clusters distinct centroids, sorted ascending (fewer
// only when there are fewer atoms).
std::vector<double> FitAtoms(Atoms atoms, const KMeansOptions& options);

// 1-D clustering of `count` finite values (the atoms of the values, then FitAtoms).
template <typename T>
std::vector<double> FitScalar(const T* values, int64_t count, const KMeansOptions& options,
                              const ParallelFor& parallel_for);

// The boundary grid of ScalarCodeView for ascending centroids, in host memory.
class ScalarCodeTable {
 public:
  explicit ScalarCodeTable(const std::vector<double>& sorted_centroids);

  ScalarCodeView View() const {
    return {boundary.data(), below.data(), first.data(), cells, base, scale};
  }

  std::vector<double> boundary;
  std::vector<int32_t> below;
  std::vector<double> first;
  int64_t cells;
  double base, scale;
};

// codes[i] = index of the centroid nearest to values[i]; `sorted_centroids` ascending.
template <typename T, typename Code>
void AssignScalar(const T* values, int64_t count, const std::vector<double>& sorted_centroids,
                  const ParallelFor& parallel_for, Code* codes);

// The steps after fitting that every path shares: centroids rounded to T (codes are chosen
// against the codebook as returned, so each one is exactly the nearest row of the output),
// snap_zero applied, written into codebook[num_clusters][dim] with zero rows past the distinct
// points. Returns the centroids to code against.
template <typename T>
std::vector<double> FinishCodebook(std::vector<double> centroids, int64_t dim,
                                   const KMeansOptions& options, T* codebook);

// k-means++ and Lloyd on points[count][dim]: returns at most num_clusters distinct centroids
// (row-major, `dim` values each; fewer only when the points have fewer distinct rows).
template <typename T>
std::vector<double> FitVectors(const T* points, int64_t count, int64_t dim,
                               const KMeansOptions& options, const ParallelFor& parallel_for);

// codes[i] = index of the centroid (row of `centroids`) nearest to point i, ties to the lowest
// index; when `distances` is non-null it receives the squared distance to that centroid.
template <typename T, typename Code>
void AssignVectors(const T* points, int64_t count, int64_t dim,
                   const std::vector<double>& centroids, const ParallelFor& parallel_for,
                   Code* codes, double* distances);

}  // namespace kmeans_internal
}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_KMEANS_INTERNAL_H_
