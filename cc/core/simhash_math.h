// The device-neutral steps of simhash (cc/core/simhash.h has the formulas): sign packing, the
// choice of denominator formula and the scale of a column. MATCOMP_HOST_DEVICE, so the CPU
// kernel (cc/core/simhash.cc) and the GPU kernels (cc/kernels/simhash_gpu.cu.cc) run this very
// code, and tests/device_math_test.cc checks it on any machine.
#ifndef TF_MATCOMP_CORE_SIMHASH_MATH_H_
#define TF_MATCOMP_CORE_SIMHASH_MATH_H_

#include <math.h>

#include <cstdint>

#include "cc/core/host_device.h"
#include "cc/core/simhash.h"

namespace matcomp {

// One byte of packed signs from `count` (1..8) consecutive entries of Rᵀa: bit i is set when
// values[i] >= 0 (sign(0) = +1), least significant first; bits past `count` are 0 (padding).
template <typename T>
MATCOMP_HOST_DEVICE inline uint8_t PackSigns(const T* values, int64_t count) {
  uint8_t bits = 0;
  for (int64_t bit = 0; bit < count && bit < 8; ++bit) {
    bits |= static_cast<uint8_t>(values[bit] >= T(0)) << bit;
  }
  return bits;
}

// Whether column `col` of a packed row holds +1.
MATCOMP_HOST_DEVICE inline bool SignIsPositive(const uint8_t* row, int64_t col) {
  return (row[col / 8] >> (col % 8)) & 1;
}

// Byte `byte` of a packed row of `cols` signs that are all +1 (the m = 0 case): padding bits 0.
MATCOMP_HOST_DEVICE inline uint8_t AllPositiveByte(int64_t byte, int64_t cols) {
  const int64_t bits = cols - 8 * byte;
  return bits >= 8 ? uint8_t{0xFF} : static_cast<uint8_t>((1u << bits) - 1u);
}

// ‖R S_j‖² through the Gram matrix (k·k·(m + n)/2 multiply-adds) when that is cheaper than
// forming R S (m·k·n).
MATCOMP_HOST_DEVICE inline bool SimhashThroughGram(int64_t rows, int64_t cols, int64_t num_bits) {
  return num_bits * (rows + cols) < 2 * rows * cols;
}

// D_j from numerator Σ_b |P_bj| = ⟨A_j, R S_j⟩, squared_norm = ‖R S_j‖² and, for kNorm,
// column_squared = ‖A_j‖²; 0 when R S_j = 0.
MATCOMP_HOST_DEVICE inline double SimhashColumnScale(SimhashScale scale, double numerator,
                                                     double squared_norm, double column_squared) {
  if (!(squared_norm > 0)) return 0.0;
  return scale == SimhashScale::kLeastSquares ? numerator / squared_norm
                                              : sqrt(column_squared) / sqrt(squared_norm);
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_SIMHASH_MATH_H_
