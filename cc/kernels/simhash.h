// SimhashCompress: packed signs [num_bits, ceil(n/8)] and scales [n] for A [m, n];
// SimhashDecompress: Â [m, n] from them; SimhashProjection: the projection R [m, num_bits] both
// regenerate. The math and its formulas: cc/core/simhash.h.
#ifndef TF_MATCOMP_KERNELS_SIMHASH_H_
#define TF_MATCOMP_KERNELS_SIMHASH_H_

#include "cc/core/simhash.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_types.h"

namespace tf_matcomp {
namespace functor {

// The functors return a non-OK status only for device failures (a BLAS call or a kernel
// launch on the GPU) and for scratch that cannot be allocated (ResourceExhaustedError); the
// kernels have validated every input before.

// Writes `signs` [num_bits, ceil(n/8)] and `scales` [n] for `a` [m, n] (sizes validated).
// Sets *finite to false when Rᵀ a or a scale is not finite (a holds NaN or ±Inf). Each kernel
// owns one: the CPU one keeps the Gaussian projection's Gram matrix between calls
// (simhash_gram_cache.h); the GPU one forms it on the device each call.
template <typename Device, typename T>
struct SimhashCompress {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstMatrix a, uint64_t seed,
                          matcomp::ProjectionKind projection, matcomp::SimhashScale scale,
                          typename tensorflow::TTypes<tensorflow::uint8>::Matrix signs,
                          typename tensorflow::TTypes<T>::Vec scales, bool* finite);
};

// Writes `out` [num_rows, n] = R · S · diag(scales) (sizes validated).
template <typename Device, typename T>
struct SimhashDecompress {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<tensorflow::uint8>::ConstMatrix signs,
                          typename tensorflow::TTypes<T>::ConstVec scales, uint64_t seed,
                          matcomp::ProjectionKind projection,
                          typename tensorflow::TTypes<T>::Matrix out);
};

// Writes R [num_rows, num_bits] for `seed` into `projection` (sizes validated).
template <typename Device, typename T>
struct SimhashProjection {
  absl::Status operator()(tensorflow::OpKernelContext* context, uint64_t seed,
                          matcomp::ProjectionKind kind,
                          typename tensorflow::TTypes<T>::Matrix projection);
};

}  // namespace functor
}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_SIMHASH_H_
