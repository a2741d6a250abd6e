// Simhash compression: see simhash.h for the formulas and the determinism contract.
#include "cc/core/simhash.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "Eigen/Core"
#include "cc/core/counter_rng.h"
#include "cc/core/simhash_math.h"

namespace matcomp {
namespace {

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixView = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixView = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// Column sums are accumulated in double whatever T: they feed the scales, and cost nothing next
// to the products.
using Accumulator = double;

// Columns are processed in tiles whose width depends on the column count only (never on the
// thread count): about 16 tiles, at least 64 and at most 256 columns wide, a multiple of 8 so
// that a tile owns whole bytes of the packed signs.
constexpr int64_t kTargetTiles = 16;
constexpr int64_t kMinTileWidth = 64;
constexpr int64_t kMaxTileWidth = kMaxSimhashTileWidth;
// Edge of the square blocks of the Gram matrix, each one product computed by one thread.
constexpr int64_t kGramBlock = 128;
// Rough cycles to generate one entry of R (two 64-bit mixes and a byte sum).
constexpr int64_t kCyclesPerProjectionEntry = 12;

struct ColumnTiles {
  int64_t width;
  int64_t count;

  explicit ColumnTiles(int64_t cols) {
    const int64_t even = (cols + kTargetTiles - 1) / kTargetTiles;
    width = std::clamp((even + 7) / 8 * 8, kMinTileWidth, kMaxTileWidth);
    count = (cols + width - 1) / width;
  }
};

template <typename T>
ConstMatrixView<T> View(const T* data, int64_t rows, int64_t cols, int64_t stride) {
  return ConstMatrixView<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}

template <typename T>
MatrixView<T> View(T* data, int64_t rows, int64_t cols, int64_t stride) {
  return MatrixView<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}

// The blocks on and above the diagonal of G = Rᵀ R [k, k] (G is symmetric; only its strictly
// upper triangle and its diagonal are read later). One unit of work per block, all of equal cost.
template <typename T>
void UpperGram(const T* projection, int64_t rows, int64_t num_bits, const ParallelFor& parallel_for,
               T* gram) {
  const int64_t blocks = (num_bits + kGramBlock - 1) / kGramBlock;
  std::vector<std::pair<int64_t, int64_t>> upper;  // (block row, block column), row <= column
  for (int64_t i = 0; i < blocks; ++i) {
    for (int64_t j = i; j < blocks; ++j) upper.emplace_back(i, j);
  }
  parallel_for(static_cast<int64_t>(upper.size()), 2 * rows * kGramBlock * kGramBlock,
               [&](int64_t begin, int64_t end) {
                 for (int64_t unit = begin; unit < end; ++unit) {
                   const int64_t r0 = upper[unit].first * kGramBlock;
                   const int64_t c0 = upper[unit].second * kGramBlock;
                   const int64_t height = std::min(kGramBlock, num_bits - r0);
                   const int64_t width = std::min(kGramBlock, num_bits - c0);
                   View(gram + r0 * num_bits + c0, height, width, num_bits).noalias() =
                       View(projection + r0, rows, height, num_bits).transpose() *
                       View(projection + c0, rows, width, num_bits);
                 }
               });
}

// Writes the packed signs of P [k, width] (columns c0.. of the full matrix, c0 a multiple of 8)
// into `signs`, replaces P by S = ±1 and adds Σ_b |P_bj| to `numerators`. Returns false when P
// has a non-finite entry.
template <typename T>
bool SignsOfTile(T* p, int64_t num_bits, int64_t width, int64_t c0, int64_t packed, uint8_t* signs,
                 Accumulator* numerators) {
  bool finite = true;
  for (int64_t b = 0; b < num_bits; ++b) {
    T* row = p + b * width;
    uint8_t* bytes = signs + b * packed + c0 / 8;
    for (int64_t c = 0; c < width; ++c) {
      finite &= std::isfinite(row[c]);
      numerators[c] += std::abs(static_cast<Accumulator>(row[c]));
    }
    for (int64_t byte = 0; byte * 8 < width; ++byte) {
      bytes[byte] = PackSigns(row + byte * 8, width - byte * 8);
    }
    for (int64_t c = 0; c < width; ++c) row[c] = row[c] >= T(0) ? T(1) : T(-1);
  }
  return finite;
}

// Σ_i x[i, c] · y[i, c] for each of the `width` columns, summed in row order.
template <typename T>
void ColumnDots(const T* x, const T* y, int64_t rows, int64_t width, int64_t stride,
                Accumulator* out) {
  std::fill(out, out + width, Accumulator(0));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t c = 0; c < width; ++c) {
      out[c] += static_cast<Accumulator>(x[i * stride + c]) * y[i * stride + c];
    }
  }
}

// The rows == 0 case: R S = 0, every sign is sign(0) = +1 and every scale 0.
template <typename T>
void CompressEmptyRows(int64_t cols, int64_t num_bits, uint8_t* signs, T* scales) {
  const int64_t packed = PackedWidth(cols);
  for (int64_t b = 0; b < num_bits; ++b) {
    for (int64_t byte = 0; byte < packed; ++byte) {
      signs[b * packed + byte] = AllPositiveByte(byte, cols);
    }
  }
  std::fill(scales, scales + cols, T(0));
}

}  // namespace

std::string ValidateSimhashSizes(int64_t rows, int64_t cols, int64_t num_bits,
                                 const char* rows_name) {
  using std::to_string;
  if (num_bits < 1 || num_bits > kMaxProjectionIndex) {
    return "`num_bits` must be in [1, " + to_string(kMaxProjectionIndex) + "], got " +
           to_string(num_bits);
  }
  if (rows < 0 || rows > kMaxProjectionIndex) {
    return std::string(rows_name) + " must be in [0, " + to_string(kMaxProjectionIndex) +
           "], got " + to_string(rows);
  }
  // rows and num_bits are below 2^31, so their product cannot overflow; cols is checked first.
  const int64_t largest = kMaxSimhashBufferElements;
  if (rows * num_bits > largest) {
    return std::string(rows_name) + " * `num_bits` (the projection R) must be at most " +
           to_string(largest) + " elements, got " + to_string(rows) + " * " + to_string(num_bits);
  }
  if (cols < 0 || cols > largest || rows * cols > largest) {
    return std::string(rows_name) + " * columns must be at most " + to_string(largest) +
           " elements, got " + to_string(rows) + " * " + to_string(cols);
  }
  const int64_t tile_width = std::min(cols, kMaxSimhashTileWidth);
  if (num_bits * tile_width > kMaxSimhashTileScratch) {
    return "`num_bits` * min(columns, " + to_string(kMaxSimhashTileWidth) +
           ") (per-thread scratch) must be at most " + to_string(kMaxSimhashTileScratch) +
           ", got " + to_string(num_bits) + " * " + to_string(tile_width);
  }
  if (num_bits * PackedWidth(cols) > largest) {
    return "`num_bits` * ceil(columns / 8) (the packed signs) must be at most " +
           to_string(largest) + " bytes, got " + to_string(num_bits) + " * " +
           to_string(PackedWidth(cols));
  }
  return "";
}

template <typename T>
void FillProjection(uint64_t seed, int64_t rows, int64_t num_bits, const ParallelFor& parallel_for,
                    T* projection) {
  const uint64_t key = ProjectionKey(seed);
  parallel_for(rows, num_bits * kCyclesPerProjectionEntry, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      T* out = projection + row * num_bits;
      for (int64_t col = 0; col < num_bits; ++col) out[col] = ProjectionEntry<T>(key, row, col);
    }
  });
}

template <typename T>
bool SimhashCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                     SimhashScale scale, const ParallelFor& parallel_for, uint8_t* signs,
                     T* scales) {
  if (cols == 0) return true;
  if (rows == 0) {
    CompressEmptyRows(cols, num_bits, signs, scales);
    return true;
  }
  const int64_t k = num_bits;
  std::unique_ptr<T[]> projection(new T[rows * k]);
  FillProjection(seed, rows, k, parallel_for, projection.get());
  const T* r = projection.get();

  const bool through_gram = SimhashThroughGram(rows, cols, k);
  std::unique_ptr<T[]> gram;
  Accumulator trace = 0;
  if (through_gram) {
    gram.reset(new T[k * k]);
    UpperGram(r, rows, k, parallel_for, gram.get());
    for (int64_t b = 0; b < k; ++b) trace += gram[b * k + b];
  }

  const ColumnTiles tiles(cols);
  const int64_t packed = PackedWidth(cols);
  const int64_t flops_per_column =
      2 * k * rows + (through_gram ? k * k : 2 * rows * k) + 4 * k + 2 * rows;
  std::atomic<bool> finite{true};
  parallel_for(tiles.count, flops_per_column * tiles.width, [&](int64_t begin, int64_t end) {
    // P, then S, for one tile; and T = (strict upper G) · S or R · S. Sized for the widest tile
    // actually processed (never wider than the matrix): with few columns and many bits, k ·
    // tiles.width could be many times the validated buffers.
    const int64_t buffer_width = std::min(tiles.width, cols);
    std::vector<T> p(k * buffer_width);
    std::vector<T> product((through_gram ? k : rows) * buffer_width);
    std::vector<Accumulator> numerators(buffer_width), squared_norms(buffer_width),
        column_norms(buffer_width);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t c0 = tile * tiles.width;
      const int64_t width = std::min(tiles.width, cols - c0);
      auto p_tile = View(p.data(), k, width, width);
      p_tile.noalias() = View(r, rows, k, k).transpose() * View(a + c0, rows, width, cols);
      std::fill(numerators.begin(), numerators.end(), Accumulator(0));
      if (!SignsOfTile(p.data(), k, width, c0, packed, signs, numerators.data())) {
        finite.store(false, std::memory_order_relaxed);
      }
      const auto s_tile = View(static_cast<const T*>(p.data()), k, width, width);
      if (through_gram) {  // S_jᵀ G S_j = tr(G) + 2 · S_jᵀ (strictly upper G) S_j
        View(product.data(), k, width, width).noalias() =
            View(static_cast<const T*>(gram.get()), k, k, k)
                .template triangularView<Eigen::StrictlyUpper>() *
            s_tile;
        ColumnDots(p.data(), product.data(), k, width, width, squared_norms.data());
        for (int64_t c = 0; c < width; ++c) squared_norms[c] = trace + 2 * squared_norms[c];
      } else {
        View(product.data(), rows, width, width).noalias() = View(r, rows, k, k) * s_tile;
        ColumnDots(product.data(), product.data(), rows, width, width, squared_norms.data());
      }
      if (scale == SimhashScale::kNorm) {
        ColumnDots(a + c0, a + c0, rows, width, cols, column_norms.data());
      }
      for (int64_t c = 0; c < width; ++c) {
        scales[c0 + c] = static_cast<T>(
            SimhashColumnScale(scale, numerators[c], squared_norms[c], column_norms[c]));
        // |a_j| or the numerator can overflow even when Rᵀ a is finite: never return Inf.
        if (!std::isfinite(scales[c0 + c])) finite.store(false, std::memory_order_relaxed);
      }
    }
  });
  return finite.load();
}

template <typename T>
void SimhashDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                       int64_t num_bits, uint64_t seed, const ParallelFor& parallel_for, T* out) {
  if (rows == 0 || cols == 0) return;
  const int64_t k = num_bits;
  std::unique_ptr<T[]> projection(new T[rows * k]);
  FillProjection(seed, rows, k, parallel_for, projection.get());
  const ColumnTiles tiles(cols);
  const int64_t packed = PackedWidth(cols);
  parallel_for(tiles.count, 2 * rows * k * tiles.width, [&](int64_t begin, int64_t end) {
    // S · diag(D) for one tile, sized for the widest tile actually processed (see above).
    std::vector<T> scaled_signs(k * std::min(tiles.width, cols));
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t c0 = tile * tiles.width;
      const int64_t width = std::min(tiles.width, cols - c0);
      for (int64_t b = 0; b < k; ++b) {
        const uint8_t* bytes = signs + b * packed + c0 / 8;
        T* row = scaled_signs.data() + b * width;
        for (int64_t c = 0; c < width; ++c) {
          row[c] = SignIsPositive(bytes, c) ? scales[c0 + c] : -scales[c0 + c];
        }
      }
      View(out + c0, rows, width, cols).noalias() =
          View(static_cast<const T*>(projection.get()), rows, k, k) *
          View(static_cast<const T*>(scaled_signs.data()), k, width, width);
    }
  });
}

#define MATCOMP_INSTANTIATE_SIMHASH(T)                                                          \
  template void FillProjection<T>(uint64_t, int64_t, int64_t, const ParallelFor&, T*);          \
  template bool SimhashCompress<T>(const T*, int64_t, int64_t, int64_t, uint64_t, SimhashScale, \
                                   const ParallelFor&, uint8_t*, T*);                           \
  template void SimhashDecompress<T>(const uint8_t*, const T*, int64_t, int64_t, int64_t,       \
                                     uint64_t, const ParallelFor&, T*);
MATCOMP_INSTANTIATE_SIMHASH(float)
MATCOMP_INSTANTIATE_SIMHASH(double)
#undef MATCOMP_INSTANTIATE_SIMHASH

}  // namespace matcomp
