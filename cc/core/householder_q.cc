// Blocked thin Householder QR: see householder_q.h.
#include "cc/core/householder_q.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

namespace matcomp {
namespace {

// Columns per panel: each panel is factored column by column (level-2 work), its reflector
// applied to the rest by products of this depth.
constexpr int64_t kHouseholderPanel = 48;
// Columns per chunk of the matrices a block reflector is applied to, one chunk per work unit.
constexpr int64_t kHouseholderChunk = 128;

template <typename T>
using ColumnMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// a ← (I − V·T·Vᵀ)·a, or with Tᵀ (`transpose_t`), for V [r, b] unit lower trapezoidal (the
// reflectors stored below a panel's diagonal) and T [b, b] upper triangular.
template <typename T, typename Block, typename Vectors>
void ApplyBlockReflector(Block a, const Vectors& v, const ColumnMajor<T>& t, bool transpose_t) {
  const int64_t b = v.cols(), below = v.rows() - b;
  const auto v_top = v.topRows(b).template triangularView<Eigen::UnitLower>();
  ColumnMajor<T> product = v_top.transpose() * a.topRows(b);
  product.noalias() += v.bottomRows(below).transpose() * a.bottomRows(below);
  if (transpose_t) {
    product = t.template triangularView<Eigen::Upper>().transpose() * product;
  } else {
    product = t.template triangularView<Eigen::Upper>() * product;
  }
  a.topRows(b).noalias() -= v_top * product;
  a.bottomRows(below).noalias() -= v.bottomRows(below) * product;
}

// Applies `apply(first column, width)` to the chunks of columns [first, end), in parallel.
template <typename Apply>
void ForColumnChunks(const ParallelFor& parallel_for, int64_t first, int64_t end,
                     int64_t cost_per_column, const Apply& apply) {
  const int64_t chunks = (end - first + kHouseholderChunk - 1) / kHouseholderChunk;
  ParallelForOrThrowBadAlloc(parallel_for, chunks, cost_per_column * kHouseholderChunk,
                             [&](int64_t begin, int64_t stop) {
                               for (int64_t chunk = begin; chunk < stop; ++chunk) {
                                 const int64_t c0 = first + chunk * kHouseholderChunk;
                                 apply(c0, std::min(kHouseholderChunk, end - c0));
                               }
                             });
}

// Scales `y` by the power of two that brings its largest |entry| into [1, 2). Q is the same
// for every positive scale, and a power of two scales exactly (but for entries far below the
// largest, which round to denormals); Eigen's reflectors square the entries unscaled, so this
// keeps float32 entries above ~1e19 from overflowing and below ~1e-19 from underflowing. y with
// NaN or ±Inf is left as it is.
template <typename T>
void ScaleLargestNearOne(ColumnMajor<T>& y) {
  const T largest = y.cwiseAbs().maxCoeff();
  if (!(std::isfinite(largest) && largest > 0)) return;
  const int shift = -std::ilogb(largest);
  // In two factors: 2^shift alone can overflow (a denormal largest needs 2^149 in float32).
  y *= std::ldexp(T(1), shift / 2);
  y *= std::ldexp(T(1), shift - shift / 2);
}

}  // namespace

template <typename T>
void HouseholderQ(const T* y, int64_t rows, int64_t cols, const ParallelFor& parallel_for, T* q) {
  if (cols == 0) return;
  ColumnMajor<T> factored = Eigen::Map<const RowMajor<T>>(y, rows, cols);
  ScaleLargestNearOne(factored);
  Eigen::Matrix<T, Eigen::Dynamic, 1> coefficients(cols), scratch(cols);
  std::vector<ColumnMajor<T>> factors;  // T of each panel
  for (int64_t k0 = 0; k0 < cols; k0 += kHouseholderPanel) {
    const int64_t width = std::min(kHouseholderPanel, cols - k0), height = rows - k0;
    auto panel = factored.block(k0, k0, height, width);
    auto panel_coefficients = coefficients.segment(k0, width);
    Eigen::internal::householder_qr_inplace_unblocked(panel, panel_coefficients, scratch.data());
    RowMajor<T> factor(width, width);
    Eigen::internal::make_block_householder_triangular_factor(factor, panel, panel_coefficients);
    factors.emplace_back(factor);
    // Qᵀ·y one panel further: the panel's reflectors H = I − V·T·Vᵀ, applied as Hᵀ.
    ForColumnChunks(parallel_for, k0 + width, cols, 4 * height * width, [&](int64_t c0, int64_t w) {
      ApplyBlockReflector<T>(factored.block(k0, c0, height, w), panel, factors.back(), true);
    });
  }
  // Q = H_1·H_2·…·(I's first columns), the last panel first: H_p touches rows and columns from
  // its panel's first on (the columns before still hold I's).
  ColumnMajor<T> basis = ColumnMajor<T>::Identity(rows, cols);
  for (int64_t p = static_cast<int64_t>(factors.size()) - 1; p >= 0; --p) {
    const int64_t k0 = p * kHouseholderPanel, height = rows - k0;
    const auto panel = factored.block(k0, k0, height, factors[p].cols());
    ForColumnChunks(
        parallel_for, k0, cols, 4 * height * factors[p].cols(), [&](int64_t c0, int64_t w) {
          ApplyBlockReflector<T>(basis.block(k0, c0, height, w), panel, factors[p], false);
        });
  }
  Eigen::Map<RowMajor<T>>(q, rows, cols) = basis;
}

template void HouseholderQ<float>(const float*, int64_t, int64_t, const ParallelFor&, float*);
template void HouseholderQ<double>(const double*, int64_t, int64_t, const ParallelFor&, double*);

}  // namespace matcomp
