// Simhash compression of a matrix: A [m, n] ≈ Â = R · S · diag(D).
//
//   R [m, k]  the projection, regenerated from (seed, row, col), k = num_bits: kGaussian the
//             counter-based N(0, 1) approximation of cc/core/counter_rng.h (the default), or
//             kHadamard the structured ±1 projection of cc/core/hadamard.h (signed Walsh–Hadamard
//             columns: Rᵀ·A by a fold and a fast transform, no GEMM) S [k, n]  S = sign(Rᵀ A) with
//             sign(0) = +1, stored packed: row b of `signs` holds ceil(n / 8) bytes, column j is
//             bit j % 8 (least significant first) of byte j / 8, bit 1 means +1; padding bits are
//             written as 0 and ignored when read.
//   D [n]     per-column scales:
//               kLeastSquares  D_j = ⟨A_j, (R S)_j⟩ / ‖(R S)_j‖²  (never worse than D_j = 0)
//               kNorm          D_j = ‖A_j‖ / ‖(R S)_j‖          (the peer graph_compression's)
//             with D_j = 0 when (R S)_j = 0 (m = 0).
//
// How it is computed: the numerator needs no R S, since ⟨A_j, R S_j⟩ = S_jᵀ (Rᵀ A)_j = Σ_b |P_bj|
// with P = Rᵀ A. The denominators ‖R S_j‖² = S_jᵀ G S_j come from the Gram matrix G = Rᵀ R as
// tr(G) + 2 · S_jᵀ (strictly upper G) S_j when that is cheaper (k·k·(m + n)/2 < m·k·n
// multiply-adds), else from R S directly. For kHadamard, R S comes from the fast transform too.
// Scratch follows the inputs and outputs, not m · k: the Gaussian R is generated in row panels
// and P formed for groups of column tiles, each at most kSimhashPanelElements; G [k, k] is only
// formed when k < 2·min(m, n). Every function throws std::bad_alloc (on the calling thread)
// when its scratch cannot be allocated.
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
#include "cc/core/hadamard.h"
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

// The projection kind for its name ("gaussian", "hadamard"); the error names `projection`.
std::string ParseProjectionKind(const std::string& name, ProjectionKind* kind);

// R [rows, num_bits] row-major for `seed`.
template <typename T>
void FillProjection(uint64_t seed, ProjectionKind projection, int64_t rows, int64_t num_bits,
                    const ParallelFor& parallel_for, T* out);

// The Gram matrix G = Rᵀ R [num_bits, num_bits] row-major of the Gaussian R for (seed, rows):
// its diagonal and strictly upper triangle (the strictly lower part is left unspecified), as
// SimhashCompress computes it. It depends on no data, so a caller that compresses many
// matrices of `rows` rows with one seed may compute it once and pass it in.
template <typename T>
void GaussianGram(uint64_t seed, int64_t rows, int64_t num_bits, const ParallelFor& parallel_for,
                  T* gram);

// Compresses a [rows, cols] into signs [num_bits, PackedWidth(cols)] and scales [cols]. Returns
// false when Rᵀ a or a scale is not finite (a holds NaN or ±Inf, or a sum overflows); the
// outputs are then unspecified. Sizes must have passed ValidateSimhashSizes. `gram`: null, or
// GaussianGram(seed, rows, num_bits) (read only for the Gaussian projection where
// SimhashThroughGram(rows, cols, num_bits); the results are the same bits either way).
template <typename T>
bool SimhashCompress(const T* a, int64_t rows, int64_t cols, int64_t num_bits, uint64_t seed,
                     ProjectionKind projection, SimhashScale scale, const ParallelFor& parallel_for,
                     uint8_t* signs, T* scales, const T* gram = nullptr);

// Â = R · S · diag(scales) [rows, cols] from signs [num_bits, PackedWidth(cols)], scales [cols].
template <typename T>
void SimhashDecompress(const uint8_t* signs, const T* scales, int64_t rows, int64_t cols,
                       int64_t num_bits, uint64_t seed, ProjectionKind projection,
                       const ParallelFor& parallel_for, T* out);

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_SIMHASH_H_
