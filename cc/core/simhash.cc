// Simhash compression: see simhash.h for the formulas and the determinism contract. This file
// holds the size rules, the dispatch on the projection kind and the Gaussian projection's path;
// the structured projection's is in simhash_hadamard.cc.
#include "cc/core/simhash.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "cc/core/counter_rng.h"
#include "cc/core/simhash_internal.h"

namespace matcomp {
namespace {

using simhash_internal::Accumulator;
using simhash_internal::ColumnTiles;
using simhash_internal::Uninitialized;
using simhash_internal::View;

// Gaussian column tiles: about 16 tiles, at least 64 and at most 256 columns wide.
constexpr int64_t kTargetTiles = 16;
constexpr int64_t kMinTileWidth = 64;
// Edge of the square blocks of the Gram matrix, each one product computed by one thread.
constexpr int64_t kGramBlock = 128;
// Rough cycles to generate one entry of R (two 64-bit mixes and a byte sum).
constexpr int64_t kCyclesPerProjectionEntry = 12;

ColumnTiles GaussianTiles(int64_t cols) {
  const int64_t even = (cols + kTargetTiles - 1) / kTargetTiles;
  return ColumnTiles(cols, std::clamp((even + 7) / 8 * 8, kMinTileWidth, kMaxSimhashTileWidth));
}

// R [rows, k] in row panels of at most kSimhashPanelElements (at least one row each), generated
// into one reused buffer; fixed by the shapes, so sums over panels run in a fixed order.
template <typename T>
class ProjectionPanels {
 public:
  ProjectionPanels(uint64_t seed, int64_t rows, int64_t num_bits, const ParallelFor& parallel_for)
      : key_(ProjectionKey(seed)),
        rows_(rows),
        num_bits_(num_bits),
        panel_rows_(std::clamp<int64_t>(kSimhashPanelElements / num_bits, 1, rows)),
        parallel_for_(parallel_for),
        buffer_(Uninitialized<T>(panel_rows_ * num_bits)) {}

  int64_t count() const { return (rows_ + panel_rows_ - 1) / panel_rows_; }
  int64_t first_row(int64_t panel) const { return panel * panel_rows_; }
  int64_t height(int64_t panel) const { return std::min(panel_rows_, rows_ - first_row(panel)); }

  // The panel's rows of R [height, k], generated unless the buffer holds them already.
  const T* Get(int64_t panel) {
    if (panel != current_) {
      const int64_t row0 = first_row(panel);
      T* out = buffer_.get();
      const int64_t k = num_bits_;
      const uint64_t key = key_;
      parallel_for_(height(panel), k * kCyclesPerProjectionEntry, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          for (int64_t col = 0; col < k; ++col) {
            out[row * k + col] = ProjectionEntry<T>(key, row0 + row, col);
          }
        }
      });
      current_ = panel;
    }
    return buffer_.get();
  }

 private:
  uint64_t key_;
  int64_t rows_, num_bits_, panel_rows_;
  const ParallelFor& parallel_for_;
  std::unique_ptr<T[]> buffer_;
  int64_t current_ = -1;
};

// Writes (`add`: adds) the blocks on and above the diagonal of R_pᵀ R_p [k, k] (one panel) to
// `gram` (G is symmetric, and only its strictly upper triangle and its diagonal are read later).
// One unit of work per block, all of equal cost.
template <typename T>
void UpperGram(const T* panel, int64_t height, int64_t num_bits, bool add,
               const ParallelFor& parallel_for, T* gram) {
  const int64_t blocks = (num_bits + kGramBlock - 1) / kGramBlock;
  std::vector<std::pair<int64_t, int64_t>> upper;  // (block row, block column), row <= column
  for (int64_t i = 0; i < blocks; ++i) {
    for (int64_t j = i; j < blocks; ++j) upper.emplace_back(i, j);
  }
  ParallelForOrThrowBadAlloc(parallel_for, static_cast<int64_t>(upper.size()),
                             2 * height * kGramBlock * kGramBlock, [&](int64_t begin, int64_t end) {
                               for (int64_t unit = begin; unit < end; ++unit) {
                                 const int64_t r0 = upper[unit].first * kGramBlock;
                                 const int64_t c0 = upper[unit].second * kGramBlock;
                                 const int64_t rows = std::min(kGramBlock, num_bits - r0);
                                 const int64_t cols = std::min(kGramBlock, num_bits - c0);
                                 auto block = View(gram + r0 * num_bits + c0, rows, cols, num_bits);
                                 const auto product =
                                     View(panel + r0, height, rows, num_bits).transpose() *
                                     View(panel + c0, height, cols, num_bits);
                                 if (add) {
                                   block.noalias() += product;
                                 } else {
                                   block.noalias() = product;
                                 }
                               }
                             });
}

// G = Rᵀ R (its blocks on and above the diagonal) summed over the panels in panel order.
template <typename T>
void FillGram(ProjectionPanels<T>& panels, int64_t num_bits, const ParallelFor& parallel_for,
              T* gram) {
  for (int64_t panel = 0; panel < panels.count(); ++panel) {
    UpperGram(panels.Get(panel), panels.height(panel), num_bits, panel > 0, parallel_for, gram);
  }
}

template <typename T>
bool GaussianCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                      SimhashScale scale, const ParallelFor& parallel_for, const T* given_gram,
                      uint8_t* signs, T* scales) {
  const int64_t k = num_bits;
  ProjectionPanels<T> panels(seed, rows, k, parallel_for);
  const bool through_gram = SimhashThroughGram(rows, cols, k);
  std::unique_ptr<T[]> own_gram;
  const T* gram = given_gram;
  Accumulator trace = 0;
  if (through_gram) {
    if (gram == nullptr) {
      own_gram = Uninitialized<T>(k * k);
      FillGram(panels, k, parallel_for, own_gram.get());
      gram = own_gram.get();
    }
    for (int64_t b = 0; b < k; ++b) trace += gram[b * k + b];
  }

  const ColumnTiles tiles = GaussianTiles(cols);
  const int64_t packed = PackedWidth(cols);
  // P [k, group columns] row-major for a group of contiguous column tiles (as many as
  // kSimhashPanelElements allows, at least one), and per column of the group its sums:
  // numerators, ‖R S_j‖², ‖A_j‖².
  const int64_t group_tiles =
      std::clamp<int64_t>(kSimhashPanelElements / (k * tiles.width), 1, tiles.count);
  const int64_t max_group_width = std::min(group_tiles * tiles.width, cols);
  const std::unique_ptr<T[]> p = Uninitialized<T>(k * max_group_width);
  std::vector<Accumulator> numerators(max_group_width), squared_norms(max_group_width),
      column_norms(max_group_width);
  std::atomic<bool> finite{true};
  for (int64_t group = 0; group < tiles.count; group += group_tiles) {
    const int64_t in_group = std::min(group_tiles, tiles.count - group);
    const int64_t g0 = tiles.first(group);
    const int64_t stride = std::min(in_group * tiles.width, cols - g0);  // P's row stride
    for (auto* sums : {&numerators, &squared_norms, &column_norms}) {
      std::fill(sums->begin(), sums->end(), Accumulator(0));
    }
    // Each shard works on its run of contiguous tiles at once (columns c..c + width of the
    // group), so one product packs R once per shard rather than once per tile. A column's
    // result does not depend on the run: Eigen blocks the depth by the depth alone and runs
    // start on tile boundaries (multiples of 8 columns).
    auto for_runs = [&](int64_t flops_per_column, auto&& body) {
      ParallelForOrThrowBadAlloc(parallel_for, in_group, flops_per_column * tiles.width,
                                 [&](int64_t begin, int64_t end) {
                                   const int64_t c = tiles.first(group + begin) - g0;
                                   const int64_t last = group + end - 1;
                                   body(c, tiles.first(last) + tiles.width_of(last, cols) - g0 - c);
                                 });
    };

    // P = Rᵀ A, summed over the row panels in panel order.
    for (int64_t panel = 0; panel < panels.count(); ++panel) {
      const T* r = panels.Get(panel);
      const int64_t row0 = panels.first_row(panel), height = panels.height(panel);
      for_runs(2 * k * height, [&](int64_t c, int64_t width) {
        auto p_run = View(p.get() + c, k, width, stride);
        const auto product =
            View(r, height, k, k).transpose() * View(a + row0 * cols + g0 + c, height, width, cols);
        if (panel == 0) {
          p_run.noalias() = product;
        } else {
          p_run.noalias() += product;
        }
      });
    }
    // Signs, numerators, P → S, and ‖A_j‖² for the norm scale.
    for_runs(4 * k + 2 * rows, [&](int64_t c, int64_t width) {
      if (!simhash_internal::SignsOfTile(p.get() + c, stride, k, width, g0 + c, packed, signs,
                                         numerators.data() + c)) {
        finite.store(false, std::memory_order_relaxed);
      }
      if (scale == SimhashScale::kNorm) {
        simhash_internal::AddColumnDots(a + g0 + c, cols, a + g0 + c, cols, rows, width,
                                        column_norms.data() + c);
      }
    });
    // ‖R S_j‖²: S_jᵀ G S_j = tr(G) + 2 · S_jᵀ (strictly upper G) S_j, or Σ over panels of
    // ‖(R_p S)_j‖².
    if (through_gram) {
      for_runs(k * k, [&](int64_t c, int64_t width) {
        const T* s_run = p.get() + c;
        const std::unique_ptr<T[]> product = Uninitialized<T>(k * width);
        View(product.get(), k, width, width).noalias() =
            View(gram, k, k, k).template triangularView<Eigen::StrictlyUpper>() *
            View(s_run, k, width, stride);
        Accumulator* norms = squared_norms.data() + c;
        simhash_internal::AddColumnDots(s_run, stride, product.get(), width, k, width, norms);
        for (int64_t j = 0; j < width; ++j) norms[j] = trace + 2 * norms[j];
      });
    } else {
      for (int64_t panel = 0; panel < panels.count(); ++panel) {
        const T* r = panels.Get(panel);
        const int64_t height = panels.height(panel);
        for_runs(2 * k * height, [&](int64_t c, int64_t width) {
          const std::unique_ptr<T[]> product = Uninitialized<T>(height * width);
          View(product.get(), height, width, width).noalias() =
              View(r, height, k, k) * View(static_cast<const T*>(p.get() + c), k, width, stride);
          simhash_internal::AddColumnDots(product.get(), width, product.get(), width, height, width,
                                          squared_norms.data() + c);
        });
      }
    }
    if (!simhash_internal::ScalesOfTile(scale, numerators.data(), squared_norms.data(),
                                        column_norms.data(), stride, scales + g0)) {
      finite.store(false, std::memory_order_relaxed);
    }
  }
  return finite.load();
}

template <typename T>
void GaussianDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                        int64_t num_bits, uint64_t seed, const ParallelFor& parallel_for, T* out) {
  const int64_t k = num_bits;
  ProjectionPanels<T> panels(seed, rows, k, parallel_for);
  const ColumnTiles tiles = GaussianTiles(cols);
  const int64_t packed = PackedWidth(cols);
  for (int64_t panel = 0; panel < panels.count(); ++panel) {
    const T* r = panels.Get(panel);
    const int64_t row0 = panels.first_row(panel), height = panels.height(panel);
    // One product per shard over its run of contiguous tiles (see GaussianCompress).
    ParallelForOrThrowBadAlloc(
        parallel_for, tiles.count, 2 * height * k * tiles.width, [&](int64_t begin, int64_t end) {
          const int64_t c0 = tiles.first(begin);
          const int64_t width = tiles.first(end - 1) + tiles.width_of(end - 1, cols) - c0;
          const std::unique_ptr<T[]> scaled_signs = Uninitialized<T>(k * width);  // S · diag(D)
          for (int64_t b = 0; b < k; ++b) {
            simhash_internal::SignedScales(signs + b * packed + c0 / 8, scales + c0, width,
                                           scaled_signs.get() + b * width);
          }
          View(out + row0 * cols + c0, height, width, cols).noalias() =
              View(r, height, k, k) *
              View(static_cast<const T*>(scaled_signs.get()), k, width, width);
        });
  }
}

}  // namespace

template <typename T>
void GaussianGram(uint64_t seed, int64_t rows, int64_t num_bits, const ParallelFor& parallel_for,
                  T* gram) {
  ProjectionPanels<T> panels(seed, rows, num_bits, parallel_for);
  FillGram(panels, num_bits, parallel_for, gram);
}

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

std::string ParseProjectionKind(const std::string& name, ProjectionKind* kind) {
  if (name == "gaussian") {
    *kind = ProjectionKind::kGaussian;
  } else if (name == "hadamard") {
    *kind = ProjectionKind::kHadamard;
  } else {
    return "`projection` must be \"gaussian\" or \"hadamard\", got \"" + name + "\"";
  }
  return "";
}

template <typename T>
void FillProjection(uint64_t seed, ProjectionKind projection, int64_t rows, int64_t num_bits,
                    const ParallelFor& parallel_for, T* out) {
  const uint64_t key = ProjectionKey(seed);
  parallel_for(rows, num_bits * kCyclesPerProjectionEntry, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      T* values = out + row * num_bits;
      if (projection == ProjectionKind::kGaussian) {
        for (int64_t col = 0; col < num_bits; ++col)
          values[col] = ProjectionEntry<T>(key, row, col);
      } else {
        for (int64_t col = 0; col < num_bits; ++col) {
          values[col] = HadamardEntry<T>(key, rows, row, col);
        }
      }
    }
  });
}

template <typename T>
bool SimhashCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                     ProjectionKind projection, SimhashScale scale, const ParallelFor& parallel_for,
                     uint8_t* signs, T* scales, const T* gram) {
  if (cols == 0) return true;
  if (rows == 0) {
    simhash_internal::CompressEmptyRows(cols, num_bits, signs, scales);
    return true;
  }
  if (projection == ProjectionKind::kHadamard) {
    return simhash_internal::HadamardCompress(a, rows, cols, num_bits, seed, scale, parallel_for,
                                              signs, scales);
  }
  return GaussianCompress(a, rows, cols, num_bits, seed, scale, parallel_for, gram, signs, scales);
}

template <typename T>
void SimhashDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                       int64_t num_bits, uint64_t seed, ProjectionKind projection,
                       const ParallelFor& parallel_for, T* out) {
  if (rows == 0 || cols == 0) return;
  if (projection == ProjectionKind::kHadamard) {
    simhash_internal::HadamardDecompress(signs, scales, rows, cols, num_bits, seed, parallel_for,
                                         out);
  } else {
    GaussianDecompress(signs, scales, rows, cols, num_bits, seed, parallel_for, out);
  }
}

#define MATCOMP_INSTANTIATE_SIMHASH(T)                                                            \
  template void FillProjection<T>(uint64_t, ProjectionKind, int64_t, int64_t, const ParallelFor&, \
                                  T*);                                                            \
  template void GaussianGram<T>(uint64_t, int64_t, int64_t, const ParallelFor&, T*);              \
  template bool SimhashCompress<T>(const T*, int64_t, int64_t, int64_t, uint64_t, ProjectionKind, \
                                   SimhashScale, const ParallelFor&, uint8_t*, T*, const T*);     \
  template void SimhashDecompress<T>(const uint8_t*, const T*, int64_t, int64_t, int64_t,         \
                                     uint64_t, ProjectionKind, const ParallelFor&, T*);
MATCOMP_INSTANTIATE_SIMHASH(float)
MATCOMP_INSTANTIATE_SIMHASH(double)
#undef MATCOMP_INSTANTIATE_SIMHASH

}  // namespace matcomp
