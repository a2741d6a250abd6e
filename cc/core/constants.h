// The numeric limits and constants of tf_matcomp, defined once.
//
// The kernels (CPU and GPU), the pybind11 module and the Python package all take them from
// here: `_core.constants()` and the op library's `MatcompConstantsJson()` report them, and
// tf_matcomp/constants.py reads this very file. So each constant stays on one line of the form
//   inline constexpr <type> kName = <value>;
// with a value that is a literal, `int64_t{1} << N` or `(int64_t{1} << N) - 1`.
#ifndef TF_MATCOMP_CORE_CONSTANTS_H_
#define TF_MATCOMP_CORE_CONSTANTS_H_

#include <cstdint>

namespace matcomp {

// --- k-means ------------------------------------------------------------------------------
// Codes are uint8 up to this many clusters, int32 above.
inline constexpr int64_t kMaxUint8Clusters = 256;
// Largest supported num_clusters (the int32 code type could hold more, but the vector path
// costs O(points · clusters) per iteration and the 1-D optimal method O(clusters · atoms)).
inline constexpr int64_t kMaxClusters = 65536;
// Largest supported codebook (num_clusters · dim elements): rejects absurd outputs up front.
inline constexpr int64_t kMaxCodebookElements = int64_t{1} << 24;
// The optimal 1-D method keeps a num_clusters × atoms table of split points; these bound it.
inline constexpr int64_t kMaxOptimalClusters = 256;
inline constexpr int64_t kMaxOptimalAtoms = int64_t{1} << 16;
// Largest |value| k-means accepts: squared distances between such values (summed over a block)
// must stay finite in double precision, else centroids and codes silently overflow.
inline constexpr double kMaxKMeansMagnitude = 1e150;
// Lloyd iterations when the caller does not say.
inline constexpr int64_t kDefaultMaxIterations = 100;

// --- simhash ------------------------------------------------------------------------------
// Largest buffer (R [m, k], the output, or the packed signs) the ops accept, in elements.
inline constexpr int64_t kMaxSimhashBufferElements = int64_t{1} << 31;
// Every column tile (at most kMaxSimhashTileWidth columns) works on num_bits × tile-width
// scratch values per running thread; kMaxSimhashTileScratch bounds that (256 MiB of float32).
inline constexpr int64_t kMaxSimhashTileWidth = 256;
inline constexpr int64_t kMaxSimhashTileScratch = int64_t{1} << 26;
// The CPU kernels never hold all of R [m, k] (nor Rᵀ·A for all columns) at once: R is generated
// in row panels and Rᵀ·A formed for groups of column tiles of at most this many elements each
// (64 MiB of float32), so scratch follows the inputs and outputs, not rows · num_bits.
inline constexpr int64_t kSimhashPanelElements = int64_t{1} << 24;
// A SimhashCompress CPU kernel keeps its projection's Gram matrix Rᵀ R between calls up to
// this many entries (16 MiB of float32: num_bits <= 2048).
inline constexpr int64_t kMaxCachedGramElements = int64_t{1} << 22;
// The structured ("hadamard") projection transforms tiles of at most this many elements, so
// that a tile stays in the L2 cache through the log2(L) butterfly passes.
inline constexpr int64_t kHadamardTileElements = int64_t{1} << 17;

// --- the counter-based generator of R (cc/core/counter_rng.h) -----------------------------
inline constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15;
// 8 bytes · 255 / 2: centres the sum of the 8 bytes of a hash.
inline constexpr int64_t kByteSumOffset = 1020;
// 1/√43690, the inverse standard deviation of that sum (checked in the tests).
inline constexpr double kProjectionScale = 4.784196154532612e-3;
// Rows and columns of R are limited to 31 bits each so that the counter is collision-free.
inline constexpr int64_t kMaxProjectionIndex = (int64_t{1} << 31) - 1;

// --- the pybind11 module ---------------------------------------------------------------
// Most threads one _core call may start (`num_threads`).
inline constexpr int64_t kMaxCoreThreads = 1024;

// --- seeds --------------------------------------------------------------------------------
// Seeds are non-negative int64 values (Python ints, TF int attrs).
inline constexpr int64_t kMaxSeed = 9223372036854775807;
// The seed of the compressors' projection R (simhash) and k-means++ seeding.
inline constexpr int64_t kDefaultSeed = 42;

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_CONSTANTS_H_
