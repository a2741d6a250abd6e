// Host tests of the device-neutral math (MATCOMP_HOST_DEVICE functions in cc/core) that the CPU
// and the GPU kernels share, so that the code the GPU runs is checked on every machine.
//
// A minimal harness: each TEST is one JUnit test case, written to $XML_OUTPUT_FILE (where Bazel
// asks) so that scripts/summarize_tests.py counts them; the exit status is 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cc/core/counter_rng.h"
#include "cc/core/hadamard.h"
#include "cc/core/kmeans_internal.h"
#include "cc/core/kmeans_math.h"
#include "cc/core/kmeans_vector_fit.h"
#include "cc/core/simhash_math.h"

namespace {

struct TestCase {
  const char* name;
  std::function<void(std::vector<std::string>*)> body;
};

std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct Register {
  Register(const char* name, std::function<void(std::vector<std::string>*)> body) {
    Registry().push_back({name, std::move(body)});
  }
};

#define TEST(name)                               \
  void name(std::vector<std::string>* failures); \
  const Register register_##name(#name, name);   \
  void name(std::vector<std::string>* failures)

#define EXPECT(condition)                                                                          \
  do {                                                                                             \
    if (!(condition)) {                                                                            \
      failures->push_back(std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #condition); \
    }                                                                                              \
  } while (0)

using namespace matcomp;  // NOLINT: a test of this namespace

// The generator's definition, spelled out byte by byte (counter_rng.h sums by lane halving).
int32_t ReferenceProjectionInteger(uint64_t seed, uint64_t row, uint64_t col) {
  const uint64_t h = Mix64(Mix64(seed + kGoldenGamma) + ((row << 32) | col) * kGoldenGamma);
  int32_t sum = 0;
  for (int byte = 0; byte < 8; ++byte) sum += static_cast<int32_t>((h >> (8 * byte)) & 0xFF);
  return sum - 1020;
}

TEST(ProjectionIntegerMatchesTheByteSumDefinition) {
  for (uint64_t seed : {0ull, 1ull, 12345ull, (1ull << 63) - 1}) {
    const uint64_t key = ProjectionKey(seed);
    for (uint64_t row : {0ull, 1ull, 77ull, (1ull << 31) - 1}) {
      for (uint64_t col = 0; col < 64; ++col) {
        const int32_t k = ProjectionInteger(key, row, col);
        EXPECT(k == ReferenceProjectionInteger(seed, row, col));
        EXPECT(k >= -1020 && k <= 1020);
        EXPECT(ProjectionEntry<double>(key, row, col) == k * kProjectionScale);
        EXPECT(ProjectionEntry<float>(key, row, col) ==
               static_cast<float>(k) * static_cast<float>(kProjectionScale));
      }
    }
  }
}

TEST(ProjectionHasUnitVarianceAndZeroMean) {
  const uint64_t key = ProjectionKey(7);
  double sum = 0, square = 0;
  const int n = 512;
  for (int row = 0; row < n; ++row) {
    for (int col = 0; col < n; ++col) {
      const double r = ProjectionEntry<double>(key, row, col);
      sum += r, square += r * r;
    }
  }
  EXPECT(std::abs(sum / (n * n)) < 0.01);
  EXPECT(std::abs(square / (n * n) - 1.0) < 0.01);
  EXPECT(std::abs(kProjectionScale - 1.0 / std::sqrt(43690.0)) < 1e-15);
}

// The structured projection's entries from their definition: popcount by counting bits, the
// row sign from the top bit of the hash.
TEST(HadamardEntryMatchesItsDefinition) {
  for (uint64_t seed : {0ULL, 5ULL}) {
    const uint64_t key = ProjectionKey(seed);
    for (int64_t rows : {1, 5, 64, 100}) {
      int64_t block = 1;
      while (block < rows) block *= 2;
      EXPECT(HadamardBlock(rows) == block);
      for (uint64_t row = 0; row < static_cast<uint64_t>(rows); ++row) {
        for (uint64_t col = 0; col < 300; ++col) {
          const uint64_t q = col / block, t = col % block;
          int bits = 0;
          for (uint64_t x = row & t; x != 0; x >>= 1) bits += static_cast<int>(x & 1);
          const bool negative = (Mix64(key + ((row << 32) | q) * kGoldenGamma) >> 63) != 0;
          const double expected = (negative != (bits % 2 == 1)) ? -1.0 : 1.0;
          EXPECT(HadamardEntry<double>(key, rows, row, col) == expected);
        }
      }
    }
  }
}

TEST(HadamardBlocksCoverTheBits) {
  for (int64_t rows : {1, 3, 64, 65}) {
    for (int64_t bits : {1, 7, 64, 65, 300}) {
      int64_t total = 0;
      for (int64_t q = 0; q < HadamardBlocks(rows, bits); ++q) {
        const int64_t in_block = HadamardBitsInBlock(rows, bits, q);
        EXPECT(in_block >= 1 && in_block <= HadamardBlock(rows));
        EXPECT(HadamardFold(in_block) >= in_block && HadamardFold(in_block) < 2 * in_block + 1);
        total += in_block;
      }
      EXPECT(total == bits);
    }
  }
}

// The butterfly passes (as the CPU and the GPU run them) give H_F · x.
TEST(ButterflyPassesApplyTheHadamardMatrix) {
  for (int64_t length : {1, 2, 8, 32}) {
    const int64_t width = 3;
    std::vector<double> x(length * width), data;
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(1.0 + static_cast<double>(i));
    data = x;
    for (int64_t half = 1; half < length; half *= 2) {
      for (int64_t first = 0; first < length; ++first) {
        if ((first & half) != 0) continue;
        HadamardButterfly(data.data() + first * width, data.data() + (first + half) * width, width);
      }
    }
    for (int64_t r = 0; r < length; ++r) {
      for (int64_t c = 0; c < width; ++c) {
        double expected = 0;
        for (int64_t i = 0; i < length; ++i) {
          expected += (Parity(static_cast<uint64_t>(r & i)) ? -1.0 : 1.0) * x[i * width + c];
        }
        EXPECT(std::abs(data[r * width + c] - expected) < 1e-12);
      }
    }
  }
}

TEST(PackSignsIsLeastSignificantFirstWithZeroPadding) {
  const float values[8] = {1.f, -1.f, 0.f, -0.f, -2.f, 3.f, -4.f, 5.f};
  // sign(0) = +1, -0.0 >= 0 as well.
  EXPECT(PackSigns(values, 8) == 0b10101101);
  EXPECT(PackSigns(values, 3) == 0b101);
  EXPECT(PackSigns(values, 1) == 0b1);
  const uint8_t row[2] = {0b10101101, 0b1};
  for (int c = 0; c < 8; ++c) EXPECT(SignIsPositive(row, c) == (values[c] >= 0));
  EXPECT(SignIsPositive(row, 8));
  EXPECT(!SignIsPositive(row, 9));
}

TEST(PackSignsRoundTripsRandomRows) {
  std::mt19937_64 random(3);
  std::normal_distribution<double> normal;
  for (int cols : {1, 7, 8, 9, 63, 64, 65}) {
    std::vector<double> values(cols);
    for (double& v : values) v = normal(random);
    std::vector<uint8_t> packed(PackedWidth(cols));
    for (int64_t byte = 0; byte < PackedWidth(cols); ++byte) {
      packed[byte] = PackSigns(values.data() + 8 * byte, cols - 8 * byte);
    }
    for (int c = 0; c < cols; ++c) EXPECT(SignIsPositive(packed.data(), c) == (values[c] >= 0));
    const int tail = cols % 8;
    if (tail) EXPECT((packed.back() >> tail) == 0);
  }
}

TEST(AllPositiveBytesMatchPackedOnes) {
  for (int cols : {1, 3, 8, 13, 16, 17}) {
    const std::vector<double> ones(cols, 1.0);
    for (int64_t byte = 0; byte < PackedWidth(cols); ++byte) {
      EXPECT(AllPositiveByte(byte, cols) == PackSigns(ones.data() + 8 * byte, cols - 8 * byte));
    }
  }
  EXPECT(AllPositiveByte(0, 8) == 0xFF);
  EXPECT(AllPositiveByte(1, 13) == 0x1F);
}

TEST(SimhashScaleFormulas) {
  EXPECT(SimhashColumnScale(SimhashScale::kLeastSquares, 6.0, 3.0, 0.0) == 2.0);
  EXPECT(SimhashColumnScale(SimhashScale::kNorm, 6.0, 4.0, 9.0) == 1.5);
  EXPECT(SimhashColumnScale(SimhashScale::kLeastSquares, 6.0, 0.0, 0.0) == 0.0);
  EXPECT(SimhashColumnScale(SimhashScale::kNorm, 6.0, 0.0, 9.0) == 0.0);
  EXPECT(SimhashColumnScale(SimhashScale::kNorm, 1.0, std::numeric_limits<double>::quiet_NaN(),
                            1.0) == 0.0);
  // Gram (k·k·(m + n)/2) against R·S (m·k·n).
  EXPECT(SimhashThroughGram(4096, 4096, 1025));
  EXPECT(!SimhashThroughGram(16, 16, 1024));
}

TEST(KMeansRangeRejectsNonFiniteAndHuge) {
  EXPECT(InKMeansRange(0.0));
  EXPECT(InKMeansRange(-1e150));
  EXPECT(!InKMeansRange(1.5e150));
  EXPECT(!InKMeansRange(std::numeric_limits<double>::quiet_NaN()));
  EXPECT(!InKMeansRange(-std::numeric_limits<double>::infinity()));
}

TEST(NearestCentroidTiesGoToTheLowestIndex) {
  const double centroids[6] = {0, 0, 2, 0, 1, 1};  // three 2-D centroids
  const float on_bisector[2] = {1, 0};             // equidistant from centroids 0, 1 and 2
  double distance;
  EXPECT(NearestCentroid(on_bisector, centroids, 3, 2, &distance) == 0);
  EXPECT(distance == 1.0);
  const double near_last[2] = {1.0, 0.9};
  EXPECT(NearestCentroid(near_last, centroids, 3, 2, &distance) == 2);
  EXPECT(std::abs(distance - 0.01) < 1e-15);
  EXPECT(SquaredDistance(near_last, centroids + 2, 2) == 1.0 + 0.81);
}

TEST(HistogramBinsClampTheTopValue) {
  const double low = -1, high = 3, bins = 8, scale = bins / (high - low);
  EXPECT(HistogramBinOf(low, low, scale, bins) == 0);
  EXPECT(HistogramBinOf(high, low, scale, bins) == bins - 1);
  EXPECT(HistogramBinOf(0.49, low, scale, bins) == 2);
  EXPECT(HistogramBinOf(0.5, low, scale, bins) == 3);
}

// Converting a NaN or out-of-range double to an integer is undefined behaviour (UBSan flagged
// it for spans of a few denormals, whose bins / span is +inf): every index is clamped first.
TEST(FloatToIndexConversionsAreClampedFirst) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  EXPECT(ClampedIndex(nan, 7) == 0);
  EXPECT(ClampedIndex(-inf, 7) == 0);
  EXPECT(ClampedIndex(inf, 7) == 7);
  EXPECT(ClampedIndex(1e300, 7) == 7);
  EXPECT(ClampedIndex(-0.5, 7) == 0);
  EXPECT(ClampedIndex(3.99, 7) == 3);
  EXPECT(HistogramBinOf(0.0, 0.0, inf, 8) == 0);  // 0 · inf = NaN
  EXPECT(HistogramBinOf(1.0, 0.0, inf, 8) == 7);
  EXPECT(HistogramFixedOffset(0.0, 0.0, 0, 0.0) == 0);  // 0 / 0 = NaN
  const double tiny = std::numeric_limits<double>::denorm_min();
  EXPECT(!HistogramResolves(0.0, 1000 * tiny, kScalarHistogramBins));  // scale +inf
  EXPECT(!HistogramResolves(1.0, 1.0, kScalarHistogramBins));
  EXPECT(HistogramResolves(-1.0, 1e150, kScalarHistogramBins));
  EXPECT(HistogramResolves(0.0, 1e-300, kScalarHistogramBins));
}

// A boundary grid over a span of two denormals has an infinite scale; codes stay nearest.
TEST(ScalarCodesOverADenormalSpan) {
  const double tiny = std::numeric_limits<double>::denorm_min();
  const kmeans_internal::ScalarCodeTable table({0.0, 2 * tiny, 4 * tiny, 6 * tiny});
  const ScalarCodeView view = table.View();
  EXPECT(view.Code(-1.0) == 0);
  EXPECT(view.Code(0.0) == 0);
  EXPECT(view.Code(tiny) == 0);  // a tie: the lower centroid
  EXPECT(view.Code(2 * tiny) == 1);
  EXPECT(view.Code(4 * tiny) == 2);
  EXPECT(view.Code(6 * tiny) == 3);
  EXPECT(view.Code(1.0) == 3);
}

// The whole 1-D path (histogram or exact, Lloyd, coding) on extreme inputs: denormal spans,
// a span just above them, ±max float32 and a float64 spread over 450 decades. Built with
// -fsanitize=undefined this is the reproduction of the UBSan report; here it checks codes.
TEST(ScalarKMeansOnExtremeInputs) {
  const double tiny = std::numeric_limits<double>::denorm_min();
  const double fmax = std::numeric_limits<float>::max();
  std::mt19937_64 random(15);
  std::uniform_int_distribution<int64_t> grid(-1000, 1000);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const std::vector<std::function<double()>> inputs = {
      [&] { return grid(random) * tiny; },
      [&] { return unit(random) * 3e-304; },
      [&] { return (unit(random) < 0.5 ? -1 : 1) * std::pow(10.0, -300 + 450 * unit(random)); },
      [&] { return (unit(random) < 0.5 ? -fmax : fmax) * (unit(random) < 0.5 ? 1.0 : 0.5); },
  };
  for (const auto& draw : inputs) {
    std::vector<double> values(kScalarExactLimit + 1000);
    for (double& v : values) v = draw();
    KMeansOptions options;
    options.num_clusters = 16;
    options.max_iterations = 100;
    std::vector<double> codebook(16);
    std::vector<uint8_t> codes(values.size());
    KMeansQuantize(values.data(), values.size(), 1, options, SerialFor(), codebook.data(),
                   codes.data());
    bool nearest = true;  // up to a few ulps: boundaries between neighbours are rounded
    for (size_t i = 0; i < values.size(); ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (double c : codebook) best = std::min(best, std::abs(values[i] - c));
      const double ulp = std::nextafter(std::abs(values[i]), std::numeric_limits<double>::max()) -
                         std::abs(values[i]);
      nearest &= codes[i] < 16 && std::abs(values[i] - codebook[codes[i]]) <= best + 4 * ulp;
    }
    EXPECT(nearest);
  }
}

TEST(FixedPointOffsetSumsAreExactAndOrderIndependent) {
  std::mt19937_64 random(11);
  std::uniform_real_distribution<double> uniform(-2.0, 5.0);
  const double low = -2, high = 5;
  const int64_t bins = kScalarHistogramBins;
  const double width = (high - low) / bins, scale = bins / (high - low);
  std::vector<double> values(200000);
  for (double& v : values) v = uniform(random);
  auto fixed_sums = [&](const std::vector<double>& order) {
    std::vector<uint64_t> sums(bins, 0);
    for (double x : order) {
      const int64_t b = HistogramBinOf(x, low, scale, bins);
      sums[b] += HistogramFixedOffset(x, low, b, width);
    }
    return sums;
  };
  const std::vector<uint64_t> forward = fixed_sums(values);
  std::vector<double> shuffled = values;
  std::shuffle(shuffled.begin(), shuffled.end(), random);
  EXPECT(fixed_sums(shuffled) == forward);  // integer sums: any order, the same bits
  std::vector<double> exact(bins, 0.0), members(bins, 0.0);
  for (double x : values) {
    const int64_t b = HistogramBinOf(x, low, scale, bins);
    exact[b] += x - (low + b * width);
    members[b] += 1;
  }
  double worst = 0;
  for (int64_t b = 0; b < bins; ++b) {
    worst = std::max(worst, std::abs(HistogramOffsetSum(forward[b], width) - exact[b]) /
                                std::max(1.0, members[b]));
  }
  EXPECT(worst <= 2 * width / kHistogramFixedScale + 1e-15);
  EXPECT(HistogramFixedOffset(low - 1e-3, low, 0, width) == 0);  // clamped against rounding
  EXPECT(HistogramFixedOffset(low + 2 * width, low, 0, width) ==
         static_cast<uint64_t>(kHistogramFixedScale));
}

TEST(ScalarCodeMatchesBruteForceNearest) {
  std::mt19937_64 random(5);
  std::normal_distribution<double> normal;
  for (int k : {1, 2, 3, 16, 255}) {
    std::vector<double> centroids(k);
    for (double& c : centroids) c = normal(random);
    std::sort(centroids.begin(), centroids.end());
    const kmeans_internal::ScalarCodeTable table(centroids);
    const ScalarCodeView view = table.View();
    std::vector<double> probes(2000);
    for (double& x : probes) x = 1.5 * normal(random);
    probes.insert(probes.end(), table.boundary.begin(), table.boundary.end());  // exact ties
    for (double x : probes) {
      int32_t nearest = 0;
      for (int j = 1; j < k; ++j) {
        if (std::abs(x - centroids[j]) < std::abs(x - centroids[nearest])) nearest = j;
      }
      const int32_t code = view.Code(x);
      // Against the boundary rule exactly: the number of boundaries strictly below x.
      int32_t below = 0;
      for (double b : table.boundary) below += x > b;
      EXPECT(code == below);
      EXPECT(std::abs(std::abs(x - centroids[code]) - std::abs(x - centroids[nearest])) <= 1e-12);
    }
  }
}

TEST(HistogramAtomsFromFixedPointBinsFitLikeDoubleBins) {
  std::mt19937_64 random(9);
  std::normal_distribution<double> normal;
  const int64_t count = 300000, bins = kScalarHistogramBins;
  std::vector<double> values(count);
  for (double& v : values) v = normal(random);
  const double low = *std::min_element(values.begin(), values.end());
  const double high = *std::max_element(values.begin(), values.end());
  const double width = (high - low) / bins, scale = bins / (high - low);
  std::vector<kmeans_internal::HistogramBin> exact(bins), fixed(bins);
  std::vector<uint64_t> fixed_sums(bins, 0);
  for (double x : values) {
    const int64_t b = HistogramBinOf(x, low, scale, bins);
    exact[b].count += 1, fixed[b].count += 1;
    exact[b].offset_sum += x - (low + b * width);
    fixed_sums[b] += HistogramFixedOffset(x, low, b, width);
  }
  for (int64_t b = 0; b < bins; ++b) fixed[b].offset_sum = HistogramOffsetSum(fixed_sums[b], width);
  KMeansOptions options;
  options.num_clusters = 16;
  options.max_iterations = 100;
  kmeans_internal::Atoms exact_atoms, fixed_atoms;
  EXPECT(kmeans_internal::AtomsFromHistogram(exact, count, low, high, 16, &exact_atoms));
  EXPECT(kmeans_internal::AtomsFromHistogram(fixed, count, low, high, 16, &fixed_atoms));
  const std::vector<double> a = kmeans_internal::FitAtoms(exact_atoms, options);
  const std::vector<double> b = kmeans_internal::FitAtoms(fixed_atoms, options);
  EXPECT(a.size() == 16 && b.size() == 16);
  for (size_t j = 0; j < std::min(a.size(), b.size()); ++j) EXPECT(std::abs(a[j] - b[j]) < 1e-9);
  // A histogram with no more non-empty bins than clusters does not serve.
  kmeans_internal::Atoms few;
  std::vector<kmeans_internal::HistogramBin> sparse(bins);
  sparse[0].count = count / 2, sparse[bins - 1].count = count - count / 2;
  EXPECT(!kmeans_internal::AtomsFromHistogram(sparse, count, low, high, 16, &few));
  EXPECT(few.value.empty());
}

TEST(FinishCodebookRoundsSnapsAndPads) {
  KMeansOptions options;
  options.num_clusters = 4;
  options.snap_zero = true;
  std::vector<float> codebook(8, -7.f);
  const std::vector<double> centroids = kmeans_internal::FinishCodebook<float>(
      {0.1, 0.2, 1.0 / 3.0, 1.0}, 2, options, codebook.data());
  EXPECT(centroids.size() == 4);
  EXPECT(centroids[0] == 0.0 && centroids[1] == 0.0);  // nearest to zero snapped
  EXPECT(centroids[2] == static_cast<double>(static_cast<float>(1.0 / 3.0)));
  EXPECT(codebook[0] == 0.f && codebook[1] == 0.f);
  EXPECT(codebook[2] == static_cast<float>(1.0 / 3.0) && codebook[3] == 1.f);
  for (int i = 4; i < 8; ++i) EXPECT(codebook[i] == 0.f);  // padding rows
}

TEST(KMeansPlusPlusDrawsWalkChunksThenPoints) {
  using kmeans_internal::ChunkOfDraw;
  using kmeans_internal::PointOfDraw;
  const std::vector<double> totals = {2.0, 0.0, 3.0};
  double target = 4.5;
  EXPECT(ChunkOfDraw(totals, &target) == 2 && target == 2.5);
  target = 1.0;
  EXPECT(ChunkOfDraw(totals, &target) == 0 && target == 1.0);
  target = 9.0;  // past the end by rounding: the last chunk keeps the rest
  EXPECT(ChunkOfDraw(totals, &target) == 2 && target == 7.0);
  const double weights[] = {0.0, 1.0, 0.0, 2.0, 0.0};
  EXPECT(PointOfDraw({weights, 5}, 0.0) == 1);  // zero weights are never drawn
  EXPECT(PointOfDraw({weights, 5}, 0.999) == 1);
  EXPECT(PointOfDraw({weights, 5}, 1.0) == 3);
  EXPECT(PointOfDraw({weights, 5}, 7.0) == 3);  // past the end: the last positive weight
  const double zeros[] = {0.0, 0.0};
  EXPECT(PointOfDraw({zeros, 2}, 0.0) == -1);
}

// A backend of kmeans_vector_fit.h on the calling thread with `chunk`-point chunks, summing in
// point order: what the GPU's backend is to the loops, with another chunking and summation order.
class SerialVectorBackend {
 public:
  SerialVectorBackend(const std::vector<float>& points, int64_t dim, int64_t chunk)
      : points_(points), dim_(dim), chunk_(chunk), count_(points.size() / dim) {}

  bool ok() const { return true; }
  void CopyPoint(int64_t point, double* row) const {
    for (int64_t d = 0; d < dim_; ++d) row[d] = points_[point * dim_ + d];
  }
  std::vector<double> SeedDistances(const double* latest) {
    const bool first = distance_.empty();
    distance_.resize(count_);
    std::vector<double> totals((count_ + chunk_ - 1) / chunk_);
    for (int64_t i = 0; i < count_; ++i) {
      const double to_latest = SquaredDistance(points_.data() + i * dim_, latest, dim_);
      distance_[i] = first ? to_latest : std::min(distance_[i], to_latest);
      totals[i / chunk_] += distance_[i];
    }
    return totals;
  }
  int64_t ChunkBegin(int64_t chunk) const { return chunk * chunk_; }
  kmeans_internal::WeightSpan ChunkDistances(int64_t chunk) const {
    return {distance_.data() + chunk * chunk_, std::min(chunk_, count_ - chunk * chunk_)};
  }
  int64_t TakeFarthest() { return kmeans_internal::TakeFarthestOf(&distance_); }
  bool Assign(const std::vector<double>& centroids) {
    const std::vector<int64_t> previous = codes_;
    codes_.resize(count_);
    distance_.resize(count_);
    for (int64_t i = 0; i < count_; ++i) {
      codes_[i] = NearestCentroid(points_.data() + i * dim_, centroids.data(),
                                  centroids.size() / dim_, dim_, &distance_[i]);
    }
    return codes_ != previous;
  }
  void ClusterSums(std::vector<double>* sums, std::vector<double>* counts) const {
    std::fill(sums->begin(), sums->end(), 0.0);
    std::fill(counts->begin(), counts->end(), 0.0);
    for (int64_t i = 0; i < count_; ++i) {
      (*counts)[codes_[i]] += 1;
      for (int64_t d = 0; d < dim_; ++d) (*sums)[codes_[i] * dim_ + d] += points_[i * dim_ + d];
    }
  }

 private:
  const std::vector<float>& points_;
  const int64_t dim_, chunk_, count_;
  std::vector<double> distance_;
  std::vector<int64_t> codes_;
};

TEST(VectorFitDependsOnlyOnTheDrawsNotTheBackendsChunks) {
  // Small integers: every distance and sum is exact, so any chunking gives the same draws.
  std::mt19937 random(11);
  std::uniform_int_distribution<int> value(-6, 6);
  std::vector<float> points(3 * 9000);
  for (float& x : points) x = static_cast<float>(value(random));
  KMeansOptions options;
  options.num_clusters = 12;
  options.max_iterations = 30;
  options.seed = 7;
  const std::vector<double> cpu =
      kmeans_internal::FitVectors(points.data(), 9000, 3, options, SerialFor());
  EXPECT(cpu.size() == 12 * 3);
  for (const int64_t chunk : {int64_t{1}, int64_t{7}, int64_t{4096}, int64_t{100000}}) {
    SerialVectorBackend backend(points, 3, chunk);
    EXPECT(kmeans_internal::FitVectorsWith(backend, 9000, 3, options) == cpu);
  }
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

}  // namespace

int main() {
  std::ostringstream cases;
  int failed = 0;
  for (const TestCase& test : Registry()) {
    std::vector<std::string> failures;
    test.body(&failures);
    cases << "  <testcase classname=\"device_math_test\" name=\"" << test.name << "\">";
    if (!failures.empty()) {
      ++failed;
      std::string message;
      for (const std::string& f : failures) message += f + "\n";
      cases << "<failure message=\"" << Escape(failures.front()) << "\">" << Escape(message)
            << "</failure>";
      std::fprintf(stderr, "FAILED %s\n%s", test.name, message.c_str());
    } else {
      std::printf("PASSED %s\n", test.name);
    }
    cases << "</testcase>\n";
  }
  if (const char* path = std::getenv("XML_OUTPUT_FILE")) {
    if (FILE* file = std::fopen(path, "w")) {
      std::fprintf(file,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite "
                   "name=\"device_math_test\" tests=\"%zu\" failures=\"%d\" errors=\"0\" "
                   "skipped=\"0\">\n%s</testsuite>\n</testsuites>\n",
                   Registry().size(), failed, cases.str().c_str());
      std::fclose(file);
    }
  }
  std::printf("%zu tests, %d failed\n", Registry().size(), failed);
  return failed ? 1 : 0;
}
