// Matcomp>HouseholderQ: registration, shape function, kernel and CPU functor. The math lives in
// cc/core/householder_q.h; this file validates, allocates and calls it.
#define EIGEN_USE_THREADS

#include "cc/core/householder_q.h"
#include "cc/kernels/householder_q.h"
#include "cc/kernels/out_of_memory.h"
#include "cc/kernels/shape_checks.h"
#include "cc/kernels/tf_parallel.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_matcomp {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
using CPUDevice = Eigen::ThreadPoolDevice;

constexpr char kOp[] = "HouseholderQ";

absl::Status RowsAtLeastColumns(int64_t rows, int64_t columns) {
  if (rows >= columns) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      kOp, ": `y` must have at least as many rows as columns, got ", rows, " × ", columns));
}

REGISTER_OP("Matcomp>HouseholderQ")
    .Input("y: T")
    .Output("q: T")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle y;
      TF_RETURN_IF_ERROR(RequireRank(c, 0, 2, kOp, "y", &y));
      if (c->ValueKnown(c->Dim(y, 0)) && c->ValueKnown(c->Dim(y, 1))) {
        TF_RETURN_IF_ERROR(RowsAtLeastColumns(c->Value(c->Dim(y, 0)), c->Value(c->Dim(y, 1))));
      }
      c->set_output(0, y);
      return absl::OkStatus();
    })
    .Doc(R"doc(
The Q factor of the thin Householder QR of y: q [m, n] with orthonormal columns and y = q @ r
for an upper triangular r, the q of tf.linalg.qr(y) (LAPACK's and Eigen's reflectors). m >= n.
Blocked and multithreaded; bit-identical whatever the thread count.

y: [m, n]. q: [m, n].
)doc");

namespace functor {

template <typename T>
struct HouseholderQ<CPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, typename tensorflow::TTypes<T>::ConstMatrix y,
                          typename tensorflow::TTypes<T>::Matrix q) {
    return ReportingOutOfMemory(kOp, [&] {
      matcomp::HouseholderQ(y.data(), y.dimension(0), y.dimension(1), TfParallelFor(context),
                            q.data());
    });
  }
};

}  // namespace functor

template <typename Device, typename T>
class HouseholderQOp : public OpKernel {
 public:
  explicit HouseholderQOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& y = context->input(0);
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(y.shape()),
                absl::InvalidArgumentError(absl::StrCat(kOp, ": `y` must have rank 2, got shape ",
                                                        y.shape().DebugString())));
    OP_REQUIRES_OK(context, RowsAtLeastColumns(y.dim_size(0), y.dim_size(1)));
    Tensor* q = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, y.shape(), &q));
    if (q->NumElements() == 0) return;
    OP_REQUIRES_OK(context,
                   functor::HouseholderQ<Device, T>()(context, y.matrix<T>(), q->matrix<T>()));
  }
};

#define REGISTER_CPU(T)                                                                   \
  REGISTER_KERNEL_BUILDER(                                                                \
      Name("Matcomp>HouseholderQ").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      HouseholderQOp<CPUDevice, T>);
REGISTER_CPU(float);
REGISTER_CPU(double);
#undef REGISTER_CPU

}  // namespace tf_matcomp
