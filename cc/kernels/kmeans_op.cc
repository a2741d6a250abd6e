// Matcomp>KMeansQuantize: registration, shape function, kernel and CPU functor. The math lives
// in cc/core/kmeans.h; this file validates, allocates and calls it.
#include <new>
#include <string>

#include "cc/kernels/kmeans.h"
#include "cc/kernels/shape_checks.h"
#include "cc/kernels/tf_parallel.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_matcomp {

using ::tensorflow::DataType;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
using CPUDevice = Eigen::ThreadPoolDevice;

constexpr char kOp[] = "KMeansQuantize";
using matcomp::kMaxUint8Clusters;

namespace {

// Reads and checks the attributes; `Context` is an InferenceContext or OpKernelConstruction
// (both have GetAttr), so the shape function and the kernel apply the same rules.
template <typename Context>
absl::Status ReadAttributes(Context* context, matcomp::KMeansOptions* options,
                            int64_t* block_size) {
  int64_t seed;
  std::string method;
  DataType code_dtype;
  TF_RETURN_IF_ERROR(context->GetAttr("num_clusters", &options->num_clusters));
  TF_RETURN_IF_ERROR(context->GetAttr("block_size", block_size));
  TF_RETURN_IF_ERROR(context->GetAttr("max_iterations", &options->max_iterations));
  TF_RETURN_IF_ERROR(context->GetAttr("seed", &seed));
  TF_RETURN_IF_ERROR(context->GetAttr("snap_zero", &options->snap_zero));
  TF_RETURN_IF_ERROR(context->GetAttr("method", &method));
  TF_RETURN_IF_ERROR(context->GetAttr("code_dtype", &code_dtype));
  if (seed < 0) {  // the wrappers and SimhashCompress take seeds in [0, 2**63 - 1] too
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": `seed` must be >= 0, got ", seed));
  }
  options->seed = static_cast<uint64_t>(seed);
  options->method =
      method == "optimal" ? matcomp::KMeansMethod::kOptimal : matcomp::KMeansMethod::kLloyd;
  const std::string error = matcomp::ValidateKMeans(0, *block_size, *options);
  if (!error.empty()) return absl::InvalidArgumentError(absl::StrCat(kOp, ": ", error));
  if (code_dtype == tensorflow::DT_UINT8 && options->num_clusters > kMaxUint8Clusters) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": `num_clusters` (", options->num_clusters, ") needs `code_dtype` int32: uint8 ",
        "codes address at most ", kMaxUint8Clusters, " clusters"));
  }
  return absl::OkStatus();
}

absl::Status ColumnsDivisible(int64_t columns, int64_t block_size) {
  if (columns % block_size == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(kOp, ": `block_size` (", block_size,
                                                 ") must divide the number of columns of `a` (",
                                                 columns, ")"));
}

}  // namespace

REGISTER_OP("Matcomp>KMeansQuantize")
    .Input("a: T")
    .Output("codebook: T")
    .Output("codes: code_dtype")
    .Attr("T: {float, double}")
    .Attr("code_dtype: {uint8, int32} = DT_INT32")
    .Attr("num_clusters: int")
    .Attr("block_size: int = 1")
    .Attr("max_iterations: int = 100")
    .Attr("seed: int = 0")
    .Attr("snap_zero: bool = false")
    .Attr("method: {'lloyd', 'optimal'} = 'lloyd'")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      matcomp::KMeansOptions options;
      int64_t block_size;
      TF_RETURN_IF_ERROR(ReadAttributes(c, &options, &block_size));
      ShapeHandle a;
      TF_RETURN_IF_ERROR(RequireRank(c, 0, 2, kOp, "a", &a));
      DimensionHandle columns = c->Dim(a, 1), blocks = c->UnknownDim();
      if (c->ValueKnown(columns)) {
        TF_RETURN_IF_ERROR(ColumnsDivisible(c->Value(columns), block_size));
        blocks = c->MakeDim(c->Value(columns) / block_size);
      }
      c->set_output(0, c->Matrix(options.num_clusters, block_size));
      c->set_output(1, c->Matrix(c->Dim(a, 0), blocks));
      return absl::OkStatus();
    })
    .Doc(R"doc(
k-means quantization of a matrix viewed as rows of length block_size.

a: [m, n], finite with |values| <= 1e150, with n divisible by block_size.
codebook: [num_clusters, block_size]. Rows past the number of distinct blocks are zero (padding).
codes: [m, n / block_size], index of the nearest codebook row of each block; uint8 needs
  num_clusters <= 256.
method: "lloyd" (any block_size) or "optimal" (exact 1-D clustering, block_size 1).
)doc");

namespace functor {

template <typename T>
struct KMeansInRange<CPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, typename tensorflow::TTypes<T>::ConstFlat a,
                          bool* in_range) {
    *in_range = matcomp::AllInKMeansRange(a.data(), a.size(), TfParallelFor(context));
    return absl::OkStatus();
  }
};

template <typename T, typename Code>
struct KMeansQuantize<CPUDevice, T, Code> {
  absl::Status operator()(OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstMatrix points,
                          const matcomp::KMeansOptions& options,
                          typename tensorflow::TTypes<T>::Matrix codebook,
                          typename tensorflow::TTypes<Code>::Flat codes) {
    // The core takes its scratch from the heap, sized by the input (a sorted copy of the values
    // on the exact 1-D path, distances and codes per point for blocks; all of it on the calling
    // thread): running out is then an error of this op, as TF reports it, not a crash.
    try {
      matcomp::KMeansQuantize(points.data(), points.dimension(0), points.dimension(1), options,
                              TfParallelFor(context), codebook.data(), codes.data());
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(
          absl::StrCat(kOp, ": out of memory for the k-means scratch of ", points.dimension(0),
                       " points of ", points.dimension(1), " values"));
    }
    return absl::OkStatus();
  }
};

}  // namespace functor

template <typename Device, typename T, typename Code>
class KMeansQuantizeOp : public OpKernel {
 public:
  explicit KMeansQuantizeOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, ReadAttributes(context, &options_, &block_size_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& a = context->input(0);
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(a.shape()),
                absl::InvalidArgumentError(absl::StrCat(kOp, ": `a` must have rank 2, got shape ",
                                                        a.shape().DebugString())));
    const int64_t rows = a.dim_size(0), columns = a.dim_size(1);
    OP_REQUIRES_OK(context, ColumnsDivisible(columns, block_size_));
    bool in_range = true;
    OP_REQUIRES_OK(context, functor::KMeansInRange<Device, T>()(context, a.flat<T>(), &in_range));
    OP_REQUIRES(context, in_range,
                absl::InvalidArgumentError(absl::StrCat(
                    kOp,
                    ": `a` must contain only finite values of magnitude <= 1e150 (k-means "
                    "is undefined for NaN and infinities and its distances overflow beyond)")));

    Tensor* codebook = nullptr;
    Tensor* codes = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({options_.num_clusters, block_size_}), &codebook));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, TensorShape({rows, columns / block_size_}), &codes));
    // Row-major [m, n] is already [m·n/block_size, block_size]: the core reads `a` in place.
    const typename tensorflow::TTypes<T>::ConstMatrix points(
        a.flat<T>().data(), rows * (columns / block_size_), block_size_);
    OP_REQUIRES_OK(context,
                   functor::KMeansQuantize<Device, T, Code>()(
                       context, points, options_, codebook->matrix<T>(), codes->flat<Code>()));
  }

 private:
  matcomp::KMeansOptions options_;
  int64_t block_size_ = 1;
};

#define REGISTER(kind, Dev, T, Code)                               \
  REGISTER_KERNEL_BUILDER(Name("Matcomp>KMeansQuantize")           \
                              .Device(kind)                        \
                              .TypeConstraint<T>("T")              \
                              .TypeConstraint<Code>("code_dtype"), \
                          KMeansQuantizeOp<Dev, T, Code>);
#define REGISTER_ALL_TYPES(kind, Dev)             \
  REGISTER(kind, Dev, float, tensorflow::uint8);  \
  REGISTER(kind, Dev, float, tensorflow::int32);  \
  REGISTER(kind, Dev, double, tensorflow::uint8); \
  REGISTER(kind, Dev, double, tensorflow::int32);
REGISTER_ALL_TYPES(tensorflow::DEVICE_CPU, CPUDevice)
#if GOOGLE_CUDA
REGISTER_ALL_TYPES(tensorflow::DEVICE_GPU, Eigen::GpuDevice)
#endif  // GOOGLE_CUDA
#undef REGISTER_ALL_TYPES
#undef REGISTER

}  // namespace tf_matcomp
