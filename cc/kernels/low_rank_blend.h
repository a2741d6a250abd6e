// LowRankBlend: W = alpha * A + (1 - alpha) * B·C.
#ifndef TF_MATCOMP_KERNELS_LOW_RANK_BLEND_H_
#define TF_MATCOMP_KERNELS_LOW_RANK_BLEND_H_

#include "tensorflow/core/framework/tensor_types.h"

namespace tf_matcomp {
namespace functor {

// A [m,n], B [m,k], C [k,n] (row-major), alpha a host scalar; writes W [m,n] into `w`.
// Callers guarantee m, n > 0 (empty outputs never reach the functor).
template <typename Device, typename T>
struct LowRankBlend {
  void operator()(const Device& device, typename tensorflow::TTypes<T>::ConstMatrix a,
                  typename tensorflow::TTypes<T>::ConstMatrix b,
                  typename tensorflow::TTypes<T>::ConstMatrix c, T alpha,
                  typename tensorflow::TTypes<T>::Matrix w);
};

}  // namespace functor
}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_LOW_RANK_BLEND_H_
