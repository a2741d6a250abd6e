// The 1-D k-means path (block_size 1): values reduced once to sorted weighted atoms, then
// Lloyd's iterations (or the optimal dynamic programme) on the atoms in O(k log atoms) per
// iteration, then one O(N log k) coding pass by boundary binary search.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cc/core/kmeans_internal.h"

namespace matcomp {
namespace kmeans_internal {
namespace {

// The power of two nearest above the atoms' span (1 for a single atom): values are measured in
// it from the first atom, so that squares neither underflow (data near the denormals) nor
// overflow (spans near 1e150, summed over many values). Scaling by a power of two is exact, so
// for ordinary data every mean comes out as it would unscaled.
double SpanUnit(const Atoms& atoms) {
  const double span = atoms.value.back() - atoms.value.front();
  int exponent = 0;
  std::frexp(span, &exponent);
  return span > 0 ? std::ldexp(1.0, exponent) : 1.0;
}

// Prefix sums over atoms, taken relative to the first atom so that differences of large
// prefixes do not cancel when the data sit far from zero.
struct AtomPrefix {
  double origin, unit;
  std::vector<double> weight;  // weight[i] = total weight of atoms [0, i)
  std::vector<double> sum;     // sum of weight·(value − origin)/unit over atoms [0, i)
  std::vector<double> square;  // sum of weight·((value − origin)/unit)² over atoms [0, i)

  explicit AtomPrefix(const Atoms& atoms)
      : origin(atoms.value.front()),
        unit(SpanUnit(atoms)),
        weight(1, 0.0),
        sum(1, 0.0),
        square(1, 0.0) {
    for (size_t i = 0; i < atoms.value.size(); ++i) {
      const double w = atoms.weight[i], v = (atoms.value[i] - origin) / unit;
      weight.push_back(weight.back() + w);
      sum.push_back(sum.back() + w * v);
      square.push_back(square.back() + w * v * v);
    }
  }
  double Weight(int64_t lo, int64_t hi) const { return weight[hi] - weight[lo]; }
  double Mean(int64_t lo, int64_t hi) const {
    return origin + (sum[hi] - sum[lo]) / (weight[hi] - weight[lo]) * unit;
  }
  // Sum of squared deviations from their mean of the atoms [lo, hi) (non-empty), in unit².
  double Cost(int64_t lo, int64_t hi) const {
    const double s = sum[hi] - sum[lo];
    return std::max(0.0, square[hi] - square[lo] - s * s / (weight[hi] - weight[lo]));
  }
};

template <typename T>
void MinMax(const T* values, int64_t count, const ParallelFor& parallel_for, double* low,
            double* high) {
  const Chunks chunks = FixedChunks(count, int64_t{1} << 16, 64);
  std::vector<T> lows(chunks.count), highs(chunks.count);
  ForEachChunk(parallel_for, chunks, count, 1, [&](int64_t chunk, int64_t begin, int64_t end) {
    T lo = values[begin], hi = values[begin];
    for (int64_t i = begin; i < end; ++i) {
      lo = std::min(lo, values[i]);
      hi = std::max(hi, values[i]);
    }
    lows[chunk] = lo, highs[chunk] = hi;
  });
  *low = *std::min_element(lows.begin(), lows.end());
  *high = *std::max_element(highs.begin(), highs.end());
}

// The kScalarHistogramBins-bin histogram of the values over [low, high] (low < high).
template <typename T>
std::vector<HistogramBin> Histogram(const T* values, int64_t count, double low, double high,
                                    const ParallelFor& parallel_for) {
  constexpr int64_t kBins = kScalarHistogramBins;
  const double width = (high - low) / kBins, scale = kBins / (high - low);
  const Chunks chunks = FixedChunks(count, int64_t{1} << 18, 8);
  std::vector<HistogramBin> partial(chunks.count * kBins);
  ForEachChunk(parallel_for, chunks, count, 6, [&](int64_t chunk, int64_t begin, int64_t end) {
    HistogramBin* bins = partial.data() + chunk * kBins;
    for (int64_t i = begin; i < end; ++i) {
      const double x = static_cast<double>(values[i]);
      const int64_t b = HistogramBinOf(x, low, scale, kBins);
      bins[b].count += 1;
      bins[b].offset_sum += x - (low + b * width);
    }
  });
  for (int64_t chunk = 1; chunk < chunks.count; ++chunk) {  // merged in chunk order
    for (int64_t b = 0; b < kBins; ++b) {
      partial[b].count += partial[chunk * kBins + b].count;
      partial[b].offset_sum += partial[chunk * kBins + b].offset_sum;
    }
  }
  partial.resize(kBins);
  return partial;
}

template <typename T>
Atoms MakeAtoms(const T* values, int64_t count, int64_t num_clusters,
                const ParallelFor& parallel_for) {
  Atoms atoms;
  if (count > kScalarExactLimit) {
    double low, high;
    MinMax(values, count, parallel_for, &low, &high);
    if (HistogramResolves(low, high, kScalarHistogramBins) &&
        AtomsFromHistogram(Histogram(values, count, low, high, parallel_for), count, low, high,
                           num_clusters, &atoms)) {
      return atoms;
    }
  }
  return DistinctValues(values, count);
}

// Coarsened atom runs behind the Lloyd initialisation (see LloydOnAtoms).
constexpr int64_t kInitRuns = 1024;

// Centroid j starts at the atom holding sorted position floor((2j + 1)·N / (2k)), the midpoint
// quantile of the j-th of k equal-count groups (the composite uses the same rule).
std::vector<double> QuantileInit(const Atoms& atoms, const AtomPrefix& prefix, int64_t k) {
  const int64_t total = static_cast<int64_t>(prefix.weight.back());
  std::vector<double> centroids(k);
  for (int64_t j = 0; j < k; ++j) {
    const double position = static_cast<double>((2 * j + 1) * total / (2 * k));
    const int64_t atom = std::upper_bound(prefix.weight.begin(), prefix.weight.end(), position) -
                         prefix.weight.begin() - 1;
    centroids[j] = atoms.value[atom];
  }
  return centroids;
}

// bounds[j]..bounds[j+1] are the atoms nearest to centroid j (ties to the lower centroid).
void PlaceBounds(const Atoms& atoms, const std::vector<double>& centroids,
                 std::vector<int64_t>* bounds) {
  const int64_t k = centroids.size();
  (*bounds)[0] = 0;
  (*bounds)[k] = atoms.value.size();
  for (int64_t j = 1; j < k; ++j) {
    const double boundary = 0.5 * (centroids[j - 1] + centroids[j]);
    (*bounds)[j] =
        std::upper_bound(atoms.value.begin(), atoms.value.end(), boundary) - atoms.value.begin();
  }
}

// Moves each empty cluster's centroid onto the atom that contributes most to the error (each
// atom used once), which is never a current centroid, so centroids stay distinct.
void ReseedEmpty(const Atoms& atoms, double unit, const std::vector<int64_t>& bounds,
                 const std::vector<int64_t>& empty, std::vector<double>* centroids) {
  const int64_t k = centroids->size();
  std::vector<double> error(atoms.value.size());  // in unit², like AtomPrefix::Cost
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t a = bounds[j]; a < bounds[j + 1]; ++a) {
      const double d = (atoms.value[a] - (*centroids)[j]) / unit;
      error[a] = atoms.weight[a] * d * d;
    }
  }
  for (int64_t j : empty) {
    const int64_t worst = std::max_element(error.begin(), error.end()) - error.begin();
    (*centroids)[j] = atoms.value[worst];
    error[worst] = -1;
  }
  std::sort(centroids->begin(), centroids->end());
}

// Merges consecutive atoms into at most `limit` runs of (nearly) equal atom counts.
Atoms Coarsen(const Atoms& atoms, int64_t limit) {
  const int64_t size = atoms.value.size();
  if (size <= limit) return atoms;
  Atoms runs;
  for (int64_t run = 0; run < limit; ++run) {
    const int64_t begin = run * size / limit, end = (run + 1) * size / limit;
    double weight = 0, sum = 0;
    for (int64_t a = begin; a < end; ++a) {
      weight += atoms.weight[a];
      sum += atoms.weight[a] * (atoms.value[a] - atoms.value[begin]);
    }
    runs.value.push_back(atoms.value[begin] + sum / weight);
    runs.weight.push_back(weight);
  }
  return runs;
}

// Exact minimum of the within-cluster sum of squares over all partitions of the atoms into k
// runs: cost_c(j) = min_i cost_{c−1}(i) + Cost(i, j), whose argmin is monotone in j, so each
// layer is solved by divide and conquer in O(atoms · log atoms).
class OptimalPartition {
 public:
  OptimalPartition(const AtomPrefix& prefix, int64_t atoms) : prefix_(prefix), atoms_(atoms) {}

  std::vector<double> Centroids(int64_t k) {
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> previous(atoms_ + 1), current(atoms_ + 1, inf);
    split_.assign(k * (atoms_ + 1), 0);
    for (int64_t j = 1; j <= atoms_; ++j) previous[j] = prefix_.Cost(0, j);
    previous[0] = inf;
    for (int64_t layer = 1; layer < k; ++layer) {
      std::fill(current.begin(), current.end(), inf);
      Solve(layer, previous, layer + 1, atoms_, layer, atoms_ - 1, &current);
      previous.swap(current);
    }
    std::vector<double> centroids(k);
    int64_t end = atoms_;
    for (int64_t layer = k - 1; layer >= 0; --layer) {
      const int64_t begin = split_[layer * (atoms_ + 1) + end];
      centroids[layer] = prefix_.Mean(begin, end);
      end = begin;
    }
    return centroids;
  }

 private:
  // Fills current[j] for j in [lo, hi] (layer + 1 clusters), knowing that the best last split
  // lies in [split_lo, split_hi].
  void Solve(int64_t layer, const std::vector<double>& previous, int64_t lo, int64_t hi,
             int64_t split_lo, int64_t split_hi, std::vector<double>* current) {
    if (lo > hi) return;
    const int64_t mid = lo + (hi - lo) / 2;
    double best = std::numeric_limits<double>::infinity();
    int64_t best_split = split_lo;
    for (int64_t i = split_lo; i <= std::min(mid - 1, split_hi); ++i) {
      const double cost = previous[i] + prefix_.Cost(i, mid);
      if (cost < best) best = cost, best_split = i;
    }
    (*current)[mid] = best;
    split_[layer * (atoms_ + 1) + mid] = best_split;
    Solve(layer, previous, lo, mid - 1, split_lo, best_split, current);
    Solve(layer, previous, mid + 1, hi, best_split, split_hi, current);
  }

  const AtomPrefix& prefix_;
  const int64_t atoms_;
  std::vector<int32_t> split_;  // split_[layer·(atoms+1) + j]: first atom of the last cluster
};

std::vector<double> LloydOnAtoms(const Atoms& atoms, int64_t k, int64_t max_iterations) {
  const AtomPrefix prefix(atoms);
  std::vector<double> centroids;
  if (k <= kMaxOptimalClusters) {
    // Lloyd converges slowly from equal-count quantiles when k is large (the best levels
    // follow density^(1/3), not density): start from the optimal clustering of a coarsened
    // copy instead, which costs O(k · kInitRuns · log kInitRuns).
    const Atoms runs = Coarsen(atoms, kInitRuns);
    centroids = OptimalPartition(AtomPrefix(runs), runs.value.size()).Centroids(k);
  } else {
    centroids = QuantileInit(atoms, prefix, k);
  }
  std::vector<int64_t> bounds(k + 1), previous;
  PlaceBounds(atoms, centroids, &bounds);
  for (int64_t iteration = 0; iteration < max_iterations; ++iteration) {
    std::vector<int64_t> empty;
    for (int64_t j = 0; j < k; ++j) {
      if (prefix.Weight(bounds[j], bounds[j + 1]) > 0) {
        centroids[j] = prefix.Mean(bounds[j], bounds[j + 1]);
      } else {
        empty.push_back(j);
      }
    }
    if (!empty.empty()) ReseedEmpty(atoms, prefix.unit, bounds, empty, &centroids);
    previous = bounds;
    PlaceBounds(atoms, centroids, &bounds);
    if (empty.empty() && bounds == previous) break;  // converged: centroids are member means
  }
  return centroids;
}

}  // namespace

template <typename T>
Atoms DistinctValues(const T* values, int64_t count) {
  std::vector<T> sorted(values, values + count);
  std::sort(sorted.begin(), sorted.end());
  Atoms atoms;
  for (int64_t i = 0; i < count;) {
    int64_t j = i + 1;  // advances even past a NaN (which equals nothing)
    while (j < count && sorted[j] == sorted[i]) ++j;
    atoms.value.push_back(static_cast<double>(sorted[i]));
    atoms.weight.push_back(static_cast<double>(j - i));
    i = j;
  }
  return atoms;
}

bool AtomsFromHistogram(const std::vector<HistogramBin>& bins, int64_t count, double low,
                        double high, int64_t num_clusters, Atoms* atoms) {
  const int64_t size = static_cast<int64_t>(bins.size());
  const double width = (high - low) / size;
  // Over bin means measured in bin widths from `low`: in value units the squares of a
  // denormal-scale spread would underflow to zero and pass any data as fine enough.
  double sum = 0, square = 0;
  for (int64_t b = 0; b < size; ++b) {
    const HistogramBin& bin = bins[b];
    if (bin.count == 0) continue;
    const double offset = bin.offset_sum / bin.count;
    const double mean_in_widths = b + offset / width;
    sum += bin.count * mean_in_widths;
    square += bin.count * mean_in_widths * mean_in_widths;
    atoms->value.push_back(low + (b * width + offset));
    atoms->weight.push_back(bin.count);
  }
  const double between_bins = std::max(0.0, square - sum * sum / count);  // <= total variance
  const double k = static_cast<double>(num_clusters);
  if (count / 4.0 > 0.01 * between_bins / (k * k) ||
      static_cast<int64_t>(atoms->value.size()) <= num_clusters) {
    *atoms = Atoms();
    return false;
  }
  return true;
}

std::vector<double> FitAtoms(Atoms atoms, const KMeansOptions& options) {
  if (static_cast<int64_t>(atoms.value.size()) <= options.num_clusters) {
    return atoms.value;  // every distinct value is its own centroid (codebook padded)
  }
  if (options.method == KMeansMethod::kOptimal) {
    atoms = Coarsen(atoms, kMaxOptimalAtoms);
    const int64_t k = std::min<int64_t>(options.num_clusters, atoms.value.size());
    return OptimalPartition(AtomPrefix(atoms), atoms.value.size()).Centroids(k);
  }
  const int64_t k = std::min<int64_t>(options.num_clusters, atoms.value.size());
  return LloydOnAtoms(atoms, k, options.max_iterations);
}

template <typename T>
std::vector<double> FitScalar(const T* values, int64_t count, const KMeansOptions& options,
                              const ParallelFor& parallel_for) {
  return FitAtoms(MakeAtoms(values, count, options.num_clusters, parallel_for), options);
}

ScalarCodeTable::ScalarCodeTable(const std::vector<double>& sorted_centroids) {
  const int64_t k = sorted_centroids.size();
  boundary.resize(std::max<int64_t>(0, k - 1));
  for (int64_t j = 0; j + 1 < k; ++j) {
    boundary[j] = 0.5 * (sorted_centroids[j] + sorted_centroids[j + 1]);
  }
  cells = boundary.size() > 1 ? 8 * static_cast<int64_t>(boundary.size()) : 1;
  base = boundary.empty() ? 0.0 : boundary.front();
  const double span = boundary.empty() ? 0.0 : boundary.back() - base;
  scale = span > 0 ? cells / span : 0.0;
  below.assign(cells + 1, 0);
  first.assign(cells, std::numeric_limits<double>::infinity());
  std::vector<int32_t> inside(cells, 0);  // boundaries in each cell
  const ScalarCodeView view = View();
  for (int64_t j = static_cast<int64_t>(boundary.size()) - 1; j >= 0; --j) {
    const int64_t cell = view.Cell(boundary[j]);
    ++inside[cell];
    first[cell] = boundary[j];
  }
  for (int64_t cell = 0; cell < cells; ++cell) below[cell + 1] = below[cell] + inside[cell];
}

template <typename T, typename Code>
void AssignScalar(const T* values, int64_t count, const std::vector<double>& sorted_centroids,
                  const ParallelFor& parallel_for, Code* codes) {
  const ScalarCodeTable table(sorted_centroids);
  const ScalarCodeView view = table.View();
  parallel_for(count, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      codes[i] = static_cast<Code>(view.Code(static_cast<double>(values[i])));
    }
  });
}

template Atoms DistinctValues<float>(const float*, int64_t);
template Atoms DistinctValues<double>(const double*, int64_t);
template std::vector<double> FitScalar<float>(const float*, int64_t, const KMeansOptions&,
                                              const ParallelFor&);
template std::vector<double> FitScalar<double>(const double*, int64_t, const KMeansOptions&,
                                               const ParallelFor&);
template void AssignScalar<float, uint8_t>(const float*, int64_t, const std::vector<double>&,
                                           const ParallelFor&, uint8_t*);
template void AssignScalar<float, int32_t>(const float*, int64_t, const std::vector<double>&,
                                           const ParallelFor&, int32_t*);
template void AssignScalar<double, uint8_t>(const double*, int64_t, const std::vector<double>&,
                                            const ParallelFor&, uint8_t*);
template void AssignScalar<double, int32_t>(const double*, int64_t, const std::vector<double>&,
                                            const ParallelFor&, int32_t*);

}  // namespace kmeans_internal
}  // namespace matcomp
