// Pieces shared by the two projections' CPU code (simhash.cc: Gaussian and the dispatch,
// simhash_hadamard.cc: the structured projection). Not part of the core's interface.
#ifndef TF_MATCOMP_CORE_SIMHASH_INTERNAL_H_
#define TF_MATCOMP_CORE_SIMHASH_INTERNAL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include "Eigen/Core"
#include "cc/core/simhash.h"
#include "cc/core/simhash_math.h"

namespace matcomp {
namespace simhash_internal {

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixView = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixView = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename T>
ConstMatrixView<T> View(const T* data, int64_t rows, int64_t cols, int64_t stride) {
  return ConstMatrixView<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}

template <typename T>
MatrixView<T> View(T* data, int64_t rows, int64_t cols, int64_t stride) {
  return MatrixView<T>(data, rows, cols, Eigen::OuterStride<>(stride));
}

// A buffer of n values left uninitialised (every user writes before it reads): zeroing tens of
// MiB per call showed up in profiles.
template <typename T>
std::unique_ptr<T[]> Uninitialized(int64_t n) {
  return std::unique_ptr<T[]>(new T[n]);
}

// Column sums are accumulated in double whatever T: they feed the scales, and cost nothing next
// to the products.
using Accumulator = double;

// Columns are processed in tiles of `width` columns (a multiple of 8, so that a tile owns whole
// bytes of the packed signs), fixed by the shapes only, never by the thread count.
struct ColumnTiles {
  int64_t width;
  int64_t count;
  int64_t buffer_width;  // the widest tile actually processed: min(width, cols)

  ColumnTiles(int64_t cols, int64_t tile_width)
      : width(tile_width),
        count((cols + tile_width - 1) / tile_width),
        buffer_width(std::min(tile_width, cols)) {}

  int64_t first(int64_t tile) const { return tile * width; }
  int64_t width_of(int64_t tile, int64_t cols) const { return std::min(width, cols - first(tile)); }
};

// Writes the packed signs of P [k, width] (row stride `stride`; columns c0.. of the full matrix,
// c0 a multiple of 8) into `signs`, replaces P by S = ±1 and adds Σ_b |P_bj| to `numerators`.
// Returns false when P has a non-finite entry.
template <typename T>
bool SignsOfTile(T* p, int64_t stride, int64_t num_bits, int64_t width, int64_t c0, int64_t packed,
                 uint8_t* signs, Accumulator* numerators) {
  bool finite = true;
  for (int64_t b = 0; b < num_bits; ++b) {
    T* row = p + b * stride;
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

// row[c] = ±scales[c] by bit c of the packed `bytes` (+ when set): a row of S · diag(D) for
// decompression, 8 columns per byte (a loop the compiler vectorises).
template <typename T>
void SignedScales(const uint8_t* bytes, const T* scales, int64_t width, T* row) {
  int64_t c = 0;
  for (; c + 8 <= width; c += 8) {
    const uint32_t byte = bytes[c / 8];
    for (int bit = 0; bit < 8; ++bit) {
      row[c + bit] = ((byte >> bit) & 1) ? scales[c + bit] : -scales[c + bit];
    }
  }
  for (; c < width; ++c) row[c] = SignIsPositive(bytes, c) ? scales[c] : -scales[c];
}

// out[c] += Σ_i x[i, c] · y[i, c] for each of the `width` columns (x, y with row strides
// x_stride, y_stride), summed in row order.
template <typename T>
void AddColumnDots(const T* x, int64_t x_stride, const T* y, int64_t y_stride, int64_t rows,
                   int64_t width, Accumulator* out) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t c = 0; c < width; ++c) {
      out[c] += static_cast<Accumulator>(x[i * x_stride + c]) * y[i * y_stride + c];
    }
  }
}

// scales[c] for the `width` columns of a tile from their sums; false when one is not finite
// (|a_j| or the numerator can overflow even when Rᵀ a is finite: never return Inf).
template <typename T>
bool ScalesOfTile(SimhashScale scale, const Accumulator* numerators,
                  const Accumulator* squared_norms, const Accumulator* column_norms, int64_t width,
                  T* scales) {
  bool finite = true;
  for (int64_t c = 0; c < width; ++c) {
    scales[c] =
        static_cast<T>(SimhashColumnScale(scale, numerators[c], squared_norms[c], column_norms[c]));
    finite &= std::isfinite(scales[c]);
  }
  return finite;
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

// The structured projection's compress and decompress (simhash_hadamard.cc), for rows, cols >= 1.
template <typename T>
bool HadamardCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                      SimhashScale scale, const ParallelFor& parallel_for, uint8_t* signs,
                      T* scales);
template <typename T>
void HadamardDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                        int64_t num_bits, uint64_t seed, const ParallelFor& parallel_for, T* out);

}  // namespace simhash_internal
}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_SIMHASH_INTERNAL_H_
