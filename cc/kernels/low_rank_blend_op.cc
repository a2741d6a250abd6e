// Matcomp>LowRankBlend: registration, shape function, kernel and CPU functor.
#define EIGEN_USE_THREADS

#include "cc/kernels/low_rank_blend.h"

#include "cc/core/blend.h"
#include "cc/kernels/shape_checks.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

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

namespace {

// Half and bfloat16 blend in float so that alpha close to 0 or 1 keeps its precision.
template <typename T>
using BlendAccumulator =
    typename std::conditional<std::is_floating_point<T>::value, T, float>::type;

// Eigen calls this on every finished block of the product, while the block is still in cache,
// so the blend costs no extra pass over W. Row-major tensors are contracted as their swapped
// column-major transposes: mapper rows run along W's columns (starting at i) and mapper columns
// along W's rows (starting at j).
template <typename T>
struct BlendOutputKernel {
  const T* a;
  Eigen::Index n;
  BlendAccumulator<T> alpha;

  template <typename Index, typename Scalar>
  EIGEN_ALWAYS_INLINE void operator()(
      const Eigen::internal::blas_data_mapper<Scalar, Index, Eigen::ColMajor>& out,
      const Eigen::TensorContractionParams& params, Index i, Index j, Index num_rows,
      Index num_cols) const {
    eigen_assert(params.swapped_arguments);
    for (Index col = 0; col < num_cols; ++col) {
      matcomp::BlendInto<T, BlendAccumulator<T>>(a + (j + col) * n + i, &out(0, col), num_rows,
                                                 alpha);
    }
  }
};

}  // namespace

namespace functor {

template <typename T>
struct LowRankBlend<CPUDevice, T> {
  void operator()(const CPUDevice& device, typename tensorflow::TTypes<T>::ConstMatrix a,
                  typename tensorflow::TTypes<T>::ConstMatrix b,
                  typename tensorflow::TTypes<T>::ConstMatrix c, T alpha,
                  typename tensorflow::TTypes<T>::Matrix w) {
    if (b.dimension(1) == 0) {  // An empty product is zero: only the dense part remains.
      w.device(device) = a * alpha;
      return;
    }
    const Eigen::array<Eigen::IndexPair<Eigen::Index>, 1> contract_dims = {
        Eigen::IndexPair<Eigen::Index>(1, 0)};
    const Eigen::Index m = a.dimension(0), n = a.dimension(1), k = b.dimension(1);
    const auto blend_alpha = static_cast<BlendAccumulator<T>>(alpha);
    if (k > kMaxInnerForRowShards) {
      w.device(device) = b.contract(c, contract_dims, BlendOutputKernel<T>{a.data(), n, blend_alpha});
      return;
    }
    // For small k Eigen's threaded contraction spends more on coordination than on math
    // (measured at 4096²·64: 1.2x the time of these shards). Shard W's rows over the pool
    // instead and contract each band on one thread, still with the blend fused.
    const Eigen::Index bands = Eigen::divup(m, kRowsPerShard);
    const Eigen::TensorOpCost band_cost(0, 0, 2.0 * kRowsPerShard * n * k);
    device.parallelFor(bands, band_cost, [&](Eigen::Index first, Eigen::Index last) {
      for (Eigen::Index band = first; band < last; ++band) {
        const Eigen::Index row = band * kRowsPerShard;
        const Eigen::Index rows = std::min(kRowsPerShard, m - row);
        typename tensorflow::TTypes<T>::ConstMatrix b_band(b.data() + row * k, rows, k);
        typename tensorflow::TTypes<T>::Matrix w_band(w.data() + row * n, rows, n);
        w_band = b_band.contract(c, contract_dims,
                                 BlendOutputKernel<T>{a.data() + row * n, n, blend_alpha});
      }
    });
  }

 private:
  static constexpr Eigen::Index kMaxInnerForRowShards = 64;
  static constexpr Eigen::Index kRowsPerShard = 128;
};

}  // namespace functor

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
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `a` must have rank 2, got shape ", a.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(b.shape()),
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `b` must have rank 2, got shape ", b.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(c.shape()),
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `c` must have rank 2, got shape ", c.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsScalar(alpha.shape()),
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `alpha` must be a scalar, got shape ", alpha.shape().DebugString())));
    const int64_t m = a.dim_size(0), n = a.dim_size(1), k = b.dim_size(1);
    OP_REQUIRES(context, b.dim_size(0) == m,
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `b` must have as many rows as `a` (", m, "), got shape ",
                    b.shape().DebugString())));
    OP_REQUIRES(context, c.dim_size(0) == k && c.dim_size(1) == n,
                absl::InvalidArgumentError(absl::StrCat(
                    kOp, ": `c` must have shape [", k, ", ", n,
                    "] (columns of `b`, columns of `a`), got ", c.shape().DebugString())));

    // No forwarding of `a` into the output: the product is written before `a` is read.
    Tensor* w = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, a.shape(), &w));
    if (w->NumElements() == 0) return;
    functor::LowRankBlend<Device, T>()(context->eigen_device<Device>(), a.matrix<T>(),
                                       b.matrix<T>(), c.matrix<T>(), alpha.scalar<T>()(),
                                       w->matrix<T>());
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

}  // namespace tf_matcomp
