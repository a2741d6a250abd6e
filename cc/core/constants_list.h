// Every constant of cc/core/constants.h by name, for the two places that report them (the
// pybind11 module's `_core.constants()` and the op library's `MatcompConstantsJson()`); a test
// checks that both agree with the header itself.
#ifndef TF_MATCOMP_CORE_CONSTANTS_LIST_H_
#define TF_MATCOMP_CORE_CONSTANTS_LIST_H_

#include "cc/core/constants.h"

namespace matcomp {

// Calls visit(name, value) for each constant; value is int64_t, uint64_t or double.
template <typename Visitor>
void ForEachConstant(Visitor&& visit) {
  visit("kMaxUint8Clusters", kMaxUint8Clusters);
  visit("kMaxClusters", kMaxClusters);
  visit("kMaxCodebookElements", kMaxCodebookElements);
  visit("kMaxOptimalClusters", kMaxOptimalClusters);
  visit("kMaxOptimalAtoms", kMaxOptimalAtoms);
  visit("kMaxKMeansMagnitude", kMaxKMeansMagnitude);
  visit("kDefaultMaxIterations", kDefaultMaxIterations);
  visit("kMaxSimhashBufferElements", kMaxSimhashBufferElements);
  visit("kMaxSimhashTileWidth", kMaxSimhashTileWidth);
  visit("kMaxSimhashTileScratch", kMaxSimhashTileScratch);
  visit("kSimhashPanelElements", kSimhashPanelElements);
  visit("kMaxCachedGramElements", kMaxCachedGramElements);
  visit("kHadamardTileElements", kHadamardTileElements);
  visit("kGoldenGamma", kGoldenGamma);
  visit("kByteSumOffset", kByteSumOffset);
  visit("kProjectionScale", kProjectionScale);
  visit("kMaxProjectionIndex", kMaxProjectionIndex);
  visit("kMaxCoreThreads", kMaxCoreThreads);
  visit("kMaxSeed", kMaxSeed);
  visit("kDefaultSeed", kDefaultSeed);
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_CONSTANTS_LIST_H_
