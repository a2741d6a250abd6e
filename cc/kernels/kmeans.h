// KMeansQuantize: codebook [num_clusters, block_size] and codes [m, n / block_size] for A [m, n].
#ifndef TF_MATCOMP_KERNELS_KMEANS_H_
#define TF_MATCOMP_KERNELS_KMEANS_H_

#include "cc/core/kmeans.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_types.h"

namespace tf_matcomp {
namespace functor {

// The functors return a non-OK status only for device failures (a kernel launch or a copy on
// the GPU); the kernel has validated every input before.

// Sets *in_range to whether every value of `a` is finite and of magnitude
// <= matcomp::kMaxKMeansMagnitude.
template <typename Device, typename T>
struct KMeansInRange {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstFlat a, bool* in_range);
};

// Clusters the rows of `points` ([count, block_size], finite; options already validated) into
// `codebook` [num_clusters, block_size] and `codes` [count]. Callers guarantee count > 0 or an
// empty `codes`, and a non-empty `codebook`.
template <typename Device, typename T, typename Code>
struct KMeansQuantize {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstMatrix points,
                          const matcomp::KMeansOptions& options,
                          typename tensorflow::TTypes<T>::Matrix codebook,
                          typename tensorflow::TTypes<Code>::Flat codes);
};

}  // namespace functor
}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_KMEANS_H_
