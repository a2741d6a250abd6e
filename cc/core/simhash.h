// Simhash compression of a matrix: A [m, n] ≈ Â = R · S · diag(D).
//
//   R [m, k]  the projection, regenerated from (seed, row, col) (cc/core/counter_rng.h), k =
//   num_bits S [k, n]  S = sign(Rᵀ A) with sign(0) = +1, stored packed: row b of `signs` holds
//             ceil(n / 8) bytes, column j is bit j % 8 (least significant first) of byte j / 8,
//             bit 1 means +1; padding bits are written as 0 and ignored when read.
//   D [n]     per-column scales:
//               kLeastSquares  D_j = ⟨A_j, (R S)_j⟩ / ‖(R S)_j‖²  (never worse than D_j = 0)
//               kNorm          D_j = ‖A_j‖ / ‖(R S)_j‖          (the peer graph_compression's)
//             with D_j = 0 when (R S)_j = 0 (m = 0).
//
// How it is computed: the numerator needs no R S, since ⟨A_j, R S_j⟩ = S_jᵀ (Rᵀ A)_j = Σ_b |P_bj|
// with P = Rᵀ A. The denominators ‖R S_j‖² = S_jᵀ G S_j come from the Gram matrix G = Rᵀ R as
// tr(G) + 2 · S_jᵀ (strictly upper G) S_j when that is cheaper (k·k·(m + n)/2 < m·k·n
// multiply-adds), else from R S directly. Only R [m, k] and G [k, k] are stored: P, S and the
// products are formed one column tile at a time and reduced at once.
//
// Plain C++ over raw row-major buffers; parallelism is injected (cc/core/parallel.h). Every value
// is computed by one fixed sequence of operations that depends on the shapes only (column tiles
// and Gram blocks of fixed sizes, each a single-threaded Eigen product; sums in row order), so
// the results are bit-identical whatever the thread count.
#ifndef TF_MATCOMP_CORE_SIMHASH_H_
#define TF_MATCOMP_CORE_SIMHASH_H_

#include <cstdint>
#include <string>

#include "cc/core/constants.h"
#include "cc/core/host_device.h"
#include "cc/core/parallel.h"

namespace matcomp {

enum class SimhashScale { kLeastSquares, kNorm };

// The size limits (kMaxSimhashBufferElements, kMaxSimhashTileWidth, kMaxSimhashTileScratch)
// are in cc/core/constants.h.

MATCOMP_HOST_DEVICE inline int64_t PackedWidth(int64_t num_columns) {
  return (num_columns + 7) / 8;
}

// Empty when (rows, cols, num_bits) are valid sizes for compression/decompression, else why
// not, naming the argument: `num_bits` (>= 1, < 2^31), rows (`rows_name`: the rows of `a` or
// `num_rows`, < 2^31) and the buffer sizes above.
std::string ValidateSimhashSizes(int64_t rows, int64_t cols, int64_t num_bits,
                                 const char* rows_name);

// R [rows, num_bits] row-major for `seed`.
template <typename T>
void FillProjection(uint64_t seed, int64_t rows, int64_t num_bits, const ParallelFor& parallel_for,
                    T* projection);

// Compresses a [rows, cols] into signs [num_bits, PackedWidth(cols)] and scales [cols]. Returns
// false when Rᵀ a or a scale is not finite (a holds NaN or ±Inf, or a sum overflows); the
// outputs are then unspecified. Sizes must have passed ValidateSimhashSizes.
template <typename T>
bool SimhashCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                     SimhashScale scale, const ParallelFor& parallel_for, uint8_t* signs,
                     T* scales);

// Â = R · S · diag(scales) [rows, cols] from signs [num_bits, PackedWidth(cols)], scales [cols].
template <typename T>
void SimhashDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                       int64_t num_bits, uint64_t seed, const ParallelFor& parallel_for, T* out);

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_SIMHASH_H_
