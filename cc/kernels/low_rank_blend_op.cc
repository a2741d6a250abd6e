// Matcomp>LowRankBlend: registration, shape function and kernel. The functors:
// low_rank_blend_cpu.cc (kept apart so that GPU builds reuse its heavy object as it is) and
// low_rank_blend_gpu.cu.cc.
#define EIGEN_USE_THREADS

#include "cc/kernels/low_rank_blend.h"
#include "cc/kernels/shape_checks.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_matcomp {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
using CPUDevice = Eigen::ThreadPoolDevice;

constexpr char kOp[] = "LowRankBlend";

REGISTER_OP("Matcomp>LowRankBlend")
    .Input("a: T")
    .Input("b: T")
    .Input("c: T")
    .Input("alpha: T")
    .Output("w: T")
    .Attr("T: {float, double, half, bfloat16}")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      ShapeHandle a, b, cm, alpha;
      TF_RETURN_IF_ERROR(RequireRank(c, 0, 2, kOp, "a", &a));
      TF_RETURN_IF_ERROR(RequireRank(c, 1, 2, kOp, "b", &b));
      TF_RETURN_IF_ERROR(RequireRank(c, 2, 2, kOp, "c", &cm));
      TF_RETURN_IF_ERROR(RequireRank(c, 3, 0, kOp, "alpha", &alpha));
      DimensionHandle m, n, k;
      TF_RETURN_IF_ERROR(RequireEqualDims(c, c->Dim(a, 0), c->Dim(b, 0), kOp,
                                          "`b` must have as many rows as `a`", &m));
      TF_RETURN_IF_ERROR(RequireEqualDims(c, c->Dim(a, 1), c->Dim(cm, 1), kOp,
                                          "`c` must have as many columns as `a`", &n));
      TF_RETURN_IF_ERROR(RequireEqualDims(c, c->Dim(b, 1), c->Dim(cm, 0), kOp,
                                          "`c` must have as many rows as `b` has columns", &k));
      c->set_output(0, c->Matrix(m, n));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Blends a dense matrix with a low-rank product: w = alpha * a + (1 - alpha) * b @ c.

a: [m, n]. b: [m, k]. c: [k, n]. alpha: scalar. w: [m, n].
)doc");

template <typename Device, typename T>
class LowRankBlendOp : public OpKernel {
 public:
  explicit LowRankBlendOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& a = context->input(0);
    const Tensor& b = context->input(1);
    const Tensor& c = context->input(2);
    const Tensor& alpha = context->input(3);
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(a.shape()),
                absl::InvalidArgumentError(absl::StrCat(kOp, ": `a` must have rank 2, got shape ",
                                                        a.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(b.shape()),
                absl::InvalidArgumentError(absl::StrCat(kOp, ": `b` must have rank 2, got shape ",
                                                        b.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(c.shape()),
                absl::InvalidArgumentError(absl::StrCat(kOp, ": `c` must have rank 2, got shape ",
                                                        c.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsScalar(alpha.shape()),
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `alpha` must be a scalar, got shape ", alpha.shape().DebugString())));
    const int64_t m = a.dim_size(0), n = a.dim_size(1), k = b.dim_size(1);
    OP_REQUIRES(
        context, b.dim_size(0) == m,
        absl::InvalidArgumentError(absl::StrCat(kOp, ": `b` must have as many rows as `a` (", m,
                                                "), got shape ", b.shape().DebugString())));
    OP_REQUIRES(context, c.dim_size(0) == k && c.dim_size(1) == n,
                absl::InvalidArgumentError(absl::StrCat(kOp, ": `c` must have shape [", k, ", ", n,
                                                        "] (columns of `b`, columns of `a`), got ",
                                                        c.shape().DebugString())));

    Tensor* w = nullptr;
    if constexpr (functor::BlendsInPlace<Device>::value) {
      OP_REQUIRES_OK(context, context->forward_input_or_allocate_output({0}, 0, a.shape(), &w));
    } else {
      OP_REQUIRES_OK(context, context->allocate_output(0, a.shape(), &w));
    }
    if (w->NumElements() == 0) return;
    OP_REQUIRES_OK(context, functor::LowRankBlend<Device, T>()(
                                context, a.matrix<T>(), b.matrix<T>(), c.matrix<T>(),
                                alpha.scalar<T>()(), w->matrix<T>()));
  }
};

#define REGISTER_CPU(T)                                                                   \
  REGISTER_KERNEL_BUILDER(                                                                \
      Name("Matcomp>LowRankBlend").Device(tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
      LowRankBlendOp<CPUDevice, T>);
REGISTER_CPU(float);
REGISTER_CPU(double);
REGISTER_CPU(Eigen::half);
REGISTER_CPU(Eigen::bfloat16);
#undef REGISTER_CPU

#if GOOGLE_CUDA
// alpha stays in host memory: the kernel reads it on the host to scale the GEMM.
#define REGISTER_GPU(T)                                       \
  REGISTER_KERNEL_BUILDER(Name("Matcomp>LowRankBlend")        \
                              .Device(tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T")         \
                              .HostMemory("alpha"),           \
                          LowRankBlendOp<Eigen::GpuDevice, T>);
REGISTER_GPU(float);
REGISTER_GPU(double);
REGISTER_GPU(Eigen::half);
REGISTER_GPU(Eigen::bfloat16);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace tf_matcomp
