// LowRankBlend: W = alpha * A + (1 - alpha) * B·C.
#ifndef TF_MATCOMP_KERNELS_LOW_RANK_BLEND_H_
#define TF_MATCOMP_KERNELS_LOW_RANK_BLEND_H_

#include <type_traits>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_types.h"

namespace tf_matcomp {
namespace functor {

// A [m,n], B [m,k], C [k,n] (row-major), alpha a host scalar; writes W [m,n] into `w`.
// Callers guarantee m, n > 0 (empty outputs never reach the functor). When
// BlendsInPlace<Device> holds, `w` may be `a` itself (the kernel forwards a's buffer when it
// can), else it never is.
template <typename Device, typename T>
struct LowRankBlend {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstMatrix a,
                          typename tensorflow::TTypes<T>::ConstMatrix b,
                          typename tensorflow::TTypes<T>::ConstMatrix c, T alpha,
                          typename tensorflow::TTypes<T>::Matrix w);
};

// The CPU functor writes the product before reading `a` and needs them apart; the GPU functor
// starts from W = A and lets the GEMM's beta term add the rest, so it can work in a's buffer.
template <typename Device>
struct BlendsInPlace : std::false_type {};

#if GOOGLE_CUDA
template <>
struct BlendsInPlace<Eigen::GpuDevice> : std::true_type {};
#endif

}  // namespace functor
}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_LOW_RANK_BLEND_H_
