// LowRankBlend for a small inner dimension k: W = alpha·A + (1 − alpha)·B·C without a GEMM
// library. A GEMM library packs B and C again for every block it computes, which at k <= ~64
// costs as much as the math; here C is packed once (PackSmallInnerC) into panels of
// SmallInnerPanel<T>() columns, each [k, panel] contiguous, and every tile of
// kSmallInnerRows rows × one panel keeps its accumulators in vector registers through the k
// steps, then blends with A and stores. The rows of A and W stream once, front to back; a W
// too large to stay in cache is written with non-temporal stores (no read of W's lines before
// they are written). Figures: README, Benchmarks.
//
// Each output is Σ_l B[i, l]·C[l, j] summed over l in order, so results depend on the shapes
// only (not on how rows are shared among threads). Plain C++ with GCC/Clang vector extensions:
// the vector width follows the ISA the file is compiled for (cc/core is compiled per level).
#ifndef TF_MATCOMP_CORE_BLEND_SMALL_INNER_H_
#define TF_MATCOMP_CORE_BLEND_SMALL_INNER_H_

#include <algorithm>
#include <cstdint>

#include "cc/core/blend.h"
#include "cc/core/simd.h"

namespace matcomp {

// Rows × vectors of one tile: 6 × 4 accumulators (24 of AVX-512's 32 registers), the fastest
// of the shapes tried (4×4, 6×4, 8×3, 12×2, 14×2).
inline constexpr int kSmallInnerRows = 6;
inline constexpr int kSmallInnerVectors = 4;
// How far ahead (in elements) each tile prefetches its rows of A, so that the blend finds them
// in cache.
inline constexpr int64_t kSmallInnerPrefetch = 256;

// Columns per packed panel of C.
template <typename T>
constexpr int64_t SmallInnerPanel() {
  return kSmallInnerVectors * simd::Lanes<T>();
}

// Elements PackSmallInnerC writes for C [k, n]: every panel, the last one zero-padded.
template <typename T>
inline int64_t SmallInnerPackedSize(int64_t k, int64_t n) {
  const int64_t panel = SmallInnerPanel<T>();
  return (n + panel - 1) / panel * panel * k;
}

// C [k, n] row-major → panels p = 0, 1, ...: packed[p·k·panel + l·panel + t] = C[l, p·panel + t]
// (0 past column n).
template <typename T>
inline void PackSmallInnerC(const T* c, int64_t k, int64_t n, T* packed) {
  const int64_t panel = SmallInnerPanel<T>();
  for (int64_t first = 0; first < n; first += panel) {
    const int64_t columns = std::min(panel, n - first);
    for (int64_t l = 0; l < k; ++l, packed += panel) {
      std::copy(c + l * n + first, c + l * n + first + columns, packed);
      std::fill(packed + columns, packed + panel, T(0));
    }
  }
}

namespace small_inner_internal {

// kRows rows × one panel: w = alpha·a + beta·(b · panel). a and w have row stride `stride`;
// b [kRows, k] row stride k; the panel [k, SmallInnerPanel] contiguous.
template <typename T, int kRows, bool kStream>
inline void Tile(const T* a, const T* b, const T* panel, T* w, int64_t stride, int64_t k, T alpha,
                 T beta, bool prefetch) {
  constexpr int64_t kLanes = simd::Lanes<T>();
  if (prefetch) {  // the caller checked that a + kSmallInnerPrefetch is still in each row
    for (int r = 0; r < kRows; ++r) __builtin_prefetch(a + r * stride + kSmallInnerPrefetch, 0, 0);
  }
  simd::Vector<T> acc[kRows][kSmallInnerVectors] = {};
  for (int64_t l = 0; l < k; ++l) {
    simd::Vector<T> c[kSmallInnerVectors];
    for (int v = 0; v < kSmallInnerVectors; ++v)
      c[v] = simd::Load(panel + l * SmallInnerPanel<T>() + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const T scale = b[r * k + l];
      for (int v = 0; v < kSmallInnerVectors; ++v) acc[r][v] += scale * c[v];
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int v = 0; v < kSmallInnerVectors; ++v) {
      const int64_t offset = r * stride + v * kLanes;
      simd::StoreMaybeStreaming<T, kStream>(w + offset,
                                            Blend(alpha, beta, simd::Load(a + offset), acc[r][v]));
    }
  }
}

// The last, partial panel (`columns` < SmallInnerPanel of them) through padded copies of A and W.
template <typename T, int kRows>
inline void PartialTile(const T* a, const T* b, const T* panel, T* w, int64_t stride, int64_t k,
                        int64_t columns, T alpha, T beta) {
  constexpr int64_t kPanel = SmallInnerPanel<T>();
  T a_rows[kRows * kPanel] = {}, w_rows[kRows * kPanel];
  for (int r = 0; r < kRows; ++r)
    std::copy(a + r * stride, a + r * stride + columns, a_rows + r * kPanel);
  Tile<T, kRows, false>(a_rows, b, panel, w_rows, kPanel, k, alpha, beta, false);
  for (int r = 0; r < kRows; ++r)
    std::copy(w_rows + r * kPanel, w_rows + r * kPanel + columns, w + r * stride);
}

template <typename T, int kRows, bool kStream>
inline void RowTile(const T* a, const T* b, const T* packed, T* w, int64_t n, int64_t k, T alpha,
                    T beta) {
  constexpr int64_t kPanel = SmallInnerPanel<T>();
  int64_t first = 0;
  for (; first + kPanel <= n; first += kPanel, packed += k * kPanel) {
    Tile<T, kRows, kStream>(a + first, b, packed, w + first, n, k, alpha, beta,
                            first + kSmallInnerPrefetch < n);
  }
  if (first < n)
    PartialTile<T, kRows>(a + first, b, packed, w + first, n, k, n - first, alpha, beta);
}

template <typename T, bool kStream>
inline void BlendRows(const T* a, const T* b, const T* packed, T* w, int64_t rows, int64_t n,
                      int64_t k, T alpha) {
  const T beta = T(1) - alpha;
  int64_t i = 0;
  for (; i + kSmallInnerRows <= rows; i += kSmallInnerRows) {
    RowTile<T, kSmallInnerRows, kStream>(a + i * n, b + i * k, packed, w + i * n, n, k, alpha,
                                         beta);
  }
  static_assert(kSmallInnerRows == 6, "the switch below covers 1 .. kSmallInnerRows − 1 rows");
  const T *a_rest = a + i * n, *b_rest = b + i * k;
  T* w_rest = w + i * n;
  switch (rows - i) {
    case 5:
      return RowTile<T, 5, kStream>(a_rest, b_rest, packed, w_rest, n, k, alpha, beta);
    case 4:
      return RowTile<T, 4, kStream>(a_rest, b_rest, packed, w_rest, n, k, alpha, beta);
    case 3:
      return RowTile<T, 3, kStream>(a_rest, b_rest, packed, w_rest, n, k, alpha, beta);
    case 2:
      return RowTile<T, 2, kStream>(a_rest, b_rest, packed, w_rest, n, k, alpha, beta);
    case 1:
      return RowTile<T, 1, kStream>(a_rest, b_rest, packed, w_rest, n, k, alpha, beta);
    default:
      return;
  }
}

}  // namespace small_inner_internal

// Rows [0, rows) of W [rows, n] = alpha·A + (1 − alpha)·B·C, for A and W [rows, n] and
// B [rows, k] row-major and `packed` = PackSmallInnerC(C). `stream`: write W with non-temporal
// stores (for a W that would not stay in cache anyway).
template <typename T>
inline void BlendSmallInner(const T* a, const T* b, const T* packed, T* w, int64_t rows, int64_t n,
                            int64_t k, T alpha, bool stream) {
  if (!stream) return small_inner_internal::BlendRows<T, false>(a, b, packed, w, rows, n, k, alpha);
  small_inner_internal::BlendRows<T, true>(a, b, packed, w, rows, n, k, alpha);
  simd::StreamFence();
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_BLEND_SMALL_INNER_H_
