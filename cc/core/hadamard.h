// The structured simhash projection ("hadamard"): randomly signed columns of a Walsh–Hadamard
// matrix, so that Rᵀ·A costs one signed fold of A and a fast Walsh–Hadamard transform
// (O(m·n + k·log k·n) additions) instead of a GEMM (2·m·k·n flops).
//
// Definition, for R [m, k] and `key` = ProjectionKey(seed) (cc/core/counter_rng.h):
//   L        = HadamardBlock(m), the smallest power of two >= m (1 when m <= 1)
//   bit b    = q·L + t with block q = b / L and t = b % L
//   σ_q(i)   = −1 when the top bit of Mix64(key + (i·2³² + q)·G) is set, else +1
//   R[i, b]  = σ_q(i) · (−1)^popcount(i & t)
// Every entry is ±1 (mean 0, variance 1, like the Gaussian R); within a block the columns are
// columns of the Sylvester–Hadamard matrix H_L with the rows signed by σ_q, so they are mutually
// orthogonal when m = L. Integer operations only: bit-identical in C++, CUDA, XLA and NumPy.
//
// How it is applied: for the bits of one block (t < F = HadamardFold(bits in the block)),
// (−1)^popcount(i & t) depends on i mod F only, so
//   (Rᵀ A)[qL + t, :] = (H_F · f)[t, :],  f[r, :] = Σ_{i ≡ r (mod F)} σ_q(i) · A[i, :]
// and R·X for X [bits in block, n] is (H_F · [X; 0])[i mod F, :] · σ_q(i). H_F is symmetric and
// applied in place by log2(F) butterfly passes (`HadamardButterfly`).
#ifndef TF_MATCOMP_CORE_HADAMARD_H_
#define TF_MATCOMP_CORE_HADAMARD_H_

#include <cstdint>

#include "cc/core/constants.h"
#include "cc/core/counter_rng.h"
#include "cc/core/host_device.h"

namespace matcomp {

enum class ProjectionKind { kGaussian, kHadamard };

// The smallest power of two >= value (1 for value <= 1).
MATCOMP_HOST_DEVICE inline int64_t NextPowerOfTwo(int64_t value) {
  int64_t power = 1;
  while (power < value) power <<= 1;
  return power;
}

// L: bits per block, the order of the Hadamard matrix whose columns a block takes.
MATCOMP_HOST_DEVICE inline int64_t HadamardBlock(int64_t rows) { return NextPowerOfTwo(rows); }

// The number of blocks k bits span.
MATCOMP_HOST_DEVICE inline int64_t HadamardBlocks(int64_t rows, int64_t num_bits) {
  const int64_t block = HadamardBlock(rows);
  return (num_bits + block - 1) / block;
}

// Bits in block q (L for every block but maybe the last).
MATCOMP_HOST_DEVICE inline int64_t HadamardBitsInBlock(int64_t rows, int64_t num_bits, int64_t q) {
  const int64_t block = HadamardBlock(rows);
  const int64_t rest = num_bits - q * block;
  return rest < block ? rest : block;
}

// F: the transform length for a block of `bits` bits (a power of two <= L).
MATCOMP_HOST_DEVICE inline int64_t HadamardFold(int64_t bits) { return NextPowerOfTwo(bits); }

// σ_q(row) as a flag: true means −1.
MATCOMP_HOST_DEVICE inline bool HadamardRowNegative(uint64_t key, uint64_t row, uint64_t q) {
  return (Mix64(key + ((row << 32) | q) * kGoldenGamma) >> 63) != 0;
}

// popcount(x) mod 2, by folding (no intrinsics, so host and device share it).
MATCOMP_HOST_DEVICE inline uint32_t Parity(uint64_t x) {
  x ^= x >> 32;
  x ^= x >> 16;
  x ^= x >> 8;
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return static_cast<uint32_t>(x & 1);
}

// R[row, col] of the structured projection for `rows` rows (see above).
template <typename T>
MATCOMP_HOST_DEVICE inline T HadamardEntry(uint64_t key, int64_t rows, uint64_t row, uint64_t col) {
  const uint64_t block = static_cast<uint64_t>(HadamardBlock(rows));
  const uint64_t q = col / block, t = col % block;
  const bool negative = HadamardRowNegative(key, row, q) != (Parity(row & t) != 0);
  return negative ? T(-1) : T(1);
}

// One butterfly of H_F on `count` columns of two rows x and y (rows `first` and `first + half`
// of a row-major [F, width] buffer): (x, y) becomes (x + y, x − y). Passes half = 1, 2, ..., F/2
// over every first with (first & half) == 0 apply H_F (unnormalised). The CPU passes whole rows
// (a loop the compiler vectorises), the GPU one column per thread.
template <typename T>
MATCOMP_HOST_DEVICE inline void HadamardButterfly(T* __restrict__ x, T* __restrict__ y,
                                                  int64_t count) {
  for (int64_t c = 0; c < count; ++c) {
    const T sum = x[c] + y[c], difference = x[c] - y[c];
    x[c] = sum;
    y[c] = difference;
  }
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_HADAMARD_H_
