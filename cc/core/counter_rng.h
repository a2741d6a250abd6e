// Counter-based generator of the simhash projection R: R[row, col] is a pure function of
// (seed, row, col), so R is never stored and every implementation regenerates the same bits —
// this header (CPU and GPU kernels: the functions are MATCOMP_HOST_DEVICE), the TF composite
// (tf_matcomp/ops/composites/counter_rng.py) and the NumPy oracle of the tests.
//
// Definition (all arithmetic on uint64 modulo 2^64, `>>` logical):
//   mix(z)   = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
//              z ^ (z >> 31)                       (the SplitMix64 finalizer, a bijection)
//   key      = mix(seed + G),  G = 0x9E3779B97F4A7C15 (the golden-ratio increment)
//   counter  = row · 2^32 + col                    (row, col < 2^31)
//   h        = mix(key + counter · G)               (SplitMix64's output for state key + counter·G)
//   K        = (sum of the 8 bytes of h) − 1020     (an integer in [−1020, 1020])
//   R        = T(K) · T(kProjectionScale)           (one correctly rounded multiply in T)
//
// Only integer operations and one IEEE multiply: no log/sqrt/sin, whose last bits differ
// between libm and XLA, so R is bit-identical everywhere for a given float type T. For a fixed
// seed distinct (row, col) give distinct h (both steps are bijections).
//
// Distribution: the byte sum is the sum of 8 iid uniform integers on {0..255} (a discrete
// Irwin–Hall law), so K is symmetric with mean exactly 0 and variance exactly
// 8 · (256² − 1) / 12 = 43690; kProjectionScale = 1/√43690, so R has mean 0 and variance 1 up to
// the rounding of the scale to T (relative 2^-24 in float32). Excess kurtosis −0.15 and support
// |R| ≤ 1020/√43690 ≈ 4.88: a close approximation of N(0, 1) that is exactly reproducible.
#ifndef TF_MATCOMP_CORE_COUNTER_RNG_H_
#define TF_MATCOMP_CORE_COUNTER_RNG_H_

#include <cstdint>

#include "cc/core/constants.h"
#include "cc/core/host_device.h"

namespace matcomp {

// The generator's constants (kGoldenGamma, kByteSumOffset, kProjectionScale) and
// kMaxProjectionIndex are in cc/core/constants.h.

MATCOMP_HOST_DEVICE inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The per-seed key; hoisted out of the loops over R.
MATCOMP_HOST_DEVICE inline uint64_t ProjectionKey(uint64_t seed) {
  return Mix64(seed + kGoldenGamma);
}

// K[row, col] ∈ [−1020, 1020] (see above).
MATCOMP_HOST_DEVICE inline int32_t ProjectionInteger(uint64_t key, uint64_t row, uint64_t col) {
  const uint64_t h = Mix64(key + ((row << 32) | col) * kGoldenGamma);
  // Sum the bytes by halving the lane width: 8 lanes of 8 bits → 4 of 16 → 2 of 32 → 1.
  uint64_t s = (h & 0x00FF00FF00FF00FFULL) + ((h >> 8) & 0x00FF00FF00FF00FFULL);
  s = (s & 0x0000FFFF0000FFFFULL) + ((s >> 16) & 0x0000FFFF0000FFFFULL);
  s = (s & 0xFFFFFFFFULL) + (s >> 32);
  return static_cast<int32_t>(s) - static_cast<int32_t>(kByteSumOffset);
}

// R[row, col] in T: the integer is exact in T, the one multiply is correctly rounded.
template <typename T>
MATCOMP_HOST_DEVICE inline T ProjectionEntry(uint64_t key, uint64_t row, uint64_t col) {
  return static_cast<T>(ProjectionInteger(key, row, col)) * static_cast<T>(kProjectionScale);
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_COUNTER_RNG_H_
