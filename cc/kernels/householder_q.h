// HouseholderQ: the Q factor [m, n] of the thin Householder QR of y [m, n], m >= n. The math:
// cc/core/householder_q.h. CPU only: on a GPU, ops.householder_q's "auto" runs tf.linalg.qr
// (cuSOLVER's geqrf and orgqr), which already uses the whole device.
#ifndef TF_MATCOMP_KERNELS_HOUSEHOLDER_Q_H_
#define TF_MATCOMP_KERNELS_HOUSEHOLDER_Q_H_

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_types.h"

namespace tf_matcomp {
namespace functor {

// Writes `q` [m, n] for `y` [m, n] (validated: m >= n > 0). Returns a non-OK status only when
// scratch cannot be allocated (ResourceExhaustedError).
template <typename Device, typename T>
struct HouseholderQ {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstMatrix y,
                          typename tensorflow::TTypes<T>::Matrix q);
};

}  // namespace functor
}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_HOUSEHOLDER_Q_H_
