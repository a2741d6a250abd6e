// Simhash with the structured projection (cc/core/hadamard.h): per column tile, Rᵀ·A block by
// block as a signed fold of the tile's rows followed by a fast Walsh–Hadamard transform, and R·X
// (the denominators' R·S, decompression's R·S·diag(D)) as a transform followed by an unfold.
// No GEMM and no R: scratch is O(k · tile width) per running thread.
#include <algorithm>
#include <atomic>
#include <vector>

#include "cc/core/hadamard.h"
#include "cc/core/simd.h"
#include "cc/core/simhash_internal.h"

namespace matcomp {
namespace simhash_internal {
namespace {

// Tiles as wide as kHadamardTileElements allows for the longest transform (so that a tile's
// fold buffer stays in cache through the log2(F) passes), a multiple of 8, at most
// kMaxSimhashTileWidth.
ColumnTiles HadamardTiles(int64_t rows, int64_t cols, int64_t num_bits) {
  const int64_t longest = HadamardFold(std::min(num_bits, HadamardBlock(rows)));
  const int64_t width =
      std::clamp<int64_t>(kHadamardTileElements / longest / 8 * 8, 8, kMaxSimhashTileWidth);
  return ColumnTiles(cols, width);
}

// H_F applied in place to the rows of data [length, width] (length a power of two).
template <typename T>
void Transform(T* data, int64_t length, int64_t width) {
  for (int64_t half = 1; half < length; half <<= 1) {
    for (int64_t base = 0; base < length; base += 2 * half) {
      for (int64_t first = base; first < base + half; ++first) {
        HadamardButterfly(data + first * width, data + (first + half) * width, width);
      }
    }
  }
}

// The rows of one block's transform input: fold[r] = Σ_{i ≡ r (mod F)} σ_q(i) · a[i] over the
// tile's `width` columns (a has row stride `stride`).
template <typename T>
void SignedFold(const T* a, int64_t rows, int64_t stride, int64_t width, uint64_t key, int64_t q,
                int64_t length, T* fold) {
  std::fill(fold, fold + length * width, T(0));
  for (int64_t i = 0; i < rows; ++i) {
    const T* row = a + i * stride;
    T* into = fold + (i & (length - 1)) * width;
    if (HadamardRowNegative(key, i, q)) {
      for (int64_t c = 0; c < width; ++c) into[c] -= row[c];
    } else {
      for (int64_t c = 0; c < width; ++c) into[c] += row[c];
    }
  }
}

// out[i] (=, or += when `add`) σ_q(i) · transformed[i mod F] for the tile's `width` columns;
// kStream (never with `add`): whole vectors of out written with non-temporal stores.
template <typename T, bool kStream = false>
void SignedUnfold(const T* transformed, int64_t rows, int64_t length, int64_t width, uint64_t key,
                  int64_t q, bool add, T* out, int64_t stride) {
  constexpr int64_t kLanes = simd::Lanes<T>();
  for (int64_t i = 0; i < rows; ++i) {
    const T* from = transformed + (i & (length - 1)) * width;
    T* row = out + i * stride;
    const T sign = HadamardRowNegative(key, i, q) ? T(-1) : T(1);
    int64_t c = 0;
    if constexpr (kStream) {
      for (; c + kLanes <= width; c += kLanes) {
        simd::StoreMaybeStreaming<T, true>(row + c, sign * simd::Load(from + c));
      }
    }
    for (; c < width; ++c) row[c] = (add ? row[c] : T(0)) + sign * from[c];
  }
}

// H_F · [x; 0] for x [bits, width] (rows bits.. of the result are the transform of the zeros).
template <typename T>
void TransformPadded(const T* x, int64_t bits, int64_t length, int64_t width, T* out) {
  std::copy(x, x + bits * width, out);
  std::fill(out + bits * width, out + length * width, T(0));
  Transform(out, length, width);
}

}  // namespace

template <typename T>
bool HadamardCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                      SimhashScale scale, const ParallelFor& parallel_for, uint8_t* signs,
                      T* scales) {
  const uint64_t key = ProjectionKey(seed);
  const int64_t k = num_bits, block = HadamardBlock(rows), blocks = HadamardBlocks(rows, k);
  const int64_t longest = HadamardFold(std::min(k, block));
  const ColumnTiles tiles = HadamardTiles(rows, cols, k);
  const int64_t packed = PackedWidth(cols);
  std::atomic<bool> finite{true};
  const int64_t cost_per_tile = (2 * rows * blocks + 2 * k * 12) * tiles.width;
  ParallelForOrThrowBadAlloc(
      parallel_for, tiles.count, cost_per_tile, [&](int64_t begin, int64_t end) {
        const int64_t bw = tiles.buffer_width;
        std::vector<T> p(k * bw), fold(longest * bw);
        // With several blocks R S is summed over them, row by row: [rows, width] (rows < k here).
        std::vector<T> rs(blocks > 1 ? rows * bw : 0);
        std::vector<Accumulator> numerators(bw), squared_norms(bw), column_norms(bw);
        for (int64_t tile = begin; tile < end; ++tile) {
          const int64_t c0 = tiles.first(tile), width = tiles.width_of(tile, cols);
          for (int64_t q = 0; q < blocks; ++q) {  // P = Rᵀ A, block by block
            const int64_t bits = HadamardBitsInBlock(rows, k, q), length = HadamardFold(bits);
            SignedFold(a + c0, rows, cols, width, key, q, length, fold.data());
            Transform(fold.data(), length, width);
            std::copy(fold.data(), fold.data() + bits * width, p.data() + q * block * width);
          }
          std::fill(numerators.begin(), numerators.end(), Accumulator(0));
          if (!SignsOfTile(p.data(), width, k, width, c0, packed, signs, numerators.data())) {
            finite.store(false, std::memory_order_relaxed);
          }
          // ‖R S_j‖²: one block: Σ_r count(r) · (H_F [S; 0])[r, j]², count(r) the rows i ≡ r (mod
          // F) (σ² = 1); several: R S summed over the blocks, then its column norms.
          std::fill(squared_norms.begin(), squared_norms.end(), Accumulator(0));
          for (int64_t q = 0; q < blocks; ++q) {
            const int64_t bits = HadamardBitsInBlock(rows, k, q), length = HadamardFold(bits);
            TransformPadded(p.data() + q * block * width, bits, length, width, fold.data());
            if (blocks == 1) {
              for (int64_t r = 0; r < std::min(length, rows); ++r) {
                const Accumulator count = static_cast<Accumulator>((rows - 1 - r) / length + 1);
                for (int64_t c = 0; c < width; ++c) {
                  const Accumulator value = fold[r * width + c];
                  squared_norms[c] += count * value * value;
                }
              }
            } else {
              SignedUnfold(fold.data(), rows, length, width, key, q, q > 0, rs.data(), width);
            }
          }
          if (blocks > 1) {
            AddColumnDots(rs.data(), width, rs.data(), width, rows, width, squared_norms.data());
          }
          std::fill(column_norms.begin(), column_norms.end(), Accumulator(0));
          if (scale == SimhashScale::kNorm) {
            AddColumnDots(a + c0, cols, a + c0, cols, rows, width, column_norms.data());
          }
          if (!ScalesOfTile(scale, numerators.data(), squared_norms.data(), column_norms.data(),
                            width, scales + c0)) {
            finite.store(false, std::memory_order_relaxed);
          }
        }
      });
  return finite.load();
}

template <typename T>
void HadamardDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                        int64_t num_bits, uint64_t seed, const ParallelFor& parallel_for, T* out) {
  const uint64_t key = ProjectionKey(seed);
  const int64_t k = num_bits, block = HadamardBlock(rows), blocks = HadamardBlocks(rows, k);
  const int64_t longest = HadamardFold(std::min(k, block));
  const ColumnTiles tiles = HadamardTiles(rows, cols, k);
  const int64_t packed = PackedWidth(cols);
  const int64_t cost_per_tile = (2 * rows * blocks + k * 12) * tiles.width;
  // One block writes every element of `out` once: then a large `out` is streamed.
  const bool stream =
      blocks == 1 && rows * cols * static_cast<int64_t>(sizeof(T)) >= simd::kStreamingStoreBytes;
  ParallelForOrThrowBadAlloc(
      parallel_for, tiles.count, cost_per_tile, [&](int64_t begin, int64_t end) {
        std::vector<T> fold(longest * tiles.buffer_width);
        for (int64_t tile = begin; tile < end; ++tile) {
          const int64_t c0 = tiles.first(tile), width = tiles.width_of(tile, cols);
          for (int64_t q = 0; q < blocks; ++q) {  // Â = Σ_q R_q · (S_q · diag(D))
            const int64_t bits = HadamardBitsInBlock(rows, k, q), length = HadamardFold(bits);
            for (int64_t t = 0; t < length; ++t) {
              T* row = fold.data() + t * width;
              if (t >= bits) {
                std::fill(row, row + width, T(0));
                continue;
              }
              SignedScales(signs + (q * block + t) * packed + c0 / 8, scales + c0, width, row);
            }
            Transform(fold.data(), length, width);
            if (stream) {
              SignedUnfold<T, true>(fold.data(), rows, length, width, key, q, false, out + c0,
                                    cols);
            } else {
              SignedUnfold(fold.data(), rows, length, width, key, q, q > 0, out + c0, cols);
            }
          }
        }
        if (stream) simd::StreamFence();
      });
}

#define MATCOMP_INSTANTIATE_HADAMARD(T)                                                          \
  template bool HadamardCompress<T>(const T*, int64_t, int64_t, int64_t, uint64_t, SimhashScale, \
                                    const ParallelFor&, uint8_t*, T*);                           \
  template void HadamardDecompress<T>(const uint8_t*, const T*, int64_t, int64_t, int64_t,       \
                                      uint64_t, const ParallelFor&, T*);
MATCOMP_INSTANTIATE_HADAMARD(float)
MATCOMP_INSTANTIATE_HADAMARD(double)
#undef MATCOMP_INSTANTIATE_HADAMARD

}  // namespace simhash_internal
}  // namespace matcomp
