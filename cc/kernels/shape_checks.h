// Shape-function helpers shared by the op registrations: errors that name the argument and the
// rule, instead of TF's generic "Shape must be rank 2" that names neither.
#ifndef TF_MATCOMP_KERNELS_SHAPE_CHECKS_H_
#define TF_MATCOMP_KERNELS_SHAPE_CHECKS_H_

#include "absl/status/status.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_matcomp {

// Checks that input `index` (called `arg`) has rank `rank` when its rank is known.
inline absl::Status RequireRank(tensorflow::shape_inference::InferenceContext* c, int index,
                                int rank, const char* op, const char* arg,
                                tensorflow::shape_inference::ShapeHandle* out) {
  auto shape = c->input(index);
  if (c->RankKnown(shape) && c->Rank(shape) != rank) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": `", arg, "` must have rank ", rank,
                                                   ", got shape ", c->DebugString(shape)));
  }
  return c->WithRank(shape, rank, out);
}

// Merges two dimensions that must agree, naming both in the error.
inline absl::Status RequireEqualDims(tensorflow::shape_inference::InferenceContext* c,
                                     tensorflow::shape_inference::DimensionHandle x,
                                     tensorflow::shape_inference::DimensionHandle y, const char* op,
                                     const char* rule,
                                     tensorflow::shape_inference::DimensionHandle* out) {
  if (c->ValueKnown(x) && c->ValueKnown(y) && c->Value(x) != c->Value(y)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", rule, " (got ", c->Value(x), " and ", c->Value(y), ")"));
  }
  return c->Merge(x, y, out);
}

}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_SHAPE_CHECKS_H_
