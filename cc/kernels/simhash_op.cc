// Matcomp>SimhashCompress, Matcomp>SimhashDecompress and Matcomp>SimhashProjection: registrations,
// shape functions, kernels and CPU functors. The math lives in cc/core/simhash.h; this file
// validates, allocates and calls it.
#include <memory>
#include <string>
#include <vector>

#include "cc/core/simhash_math.h"
#include "cc/kernels/out_of_memory.h"
#include "cc/kernels/shape_checks.h"
#include "cc/kernels/simhash.h"
#include "cc/kernels/simhash_gram_cache.h"
#include "cc/kernels/tf_parallel.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tf_matcomp {

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

constexpr char kCompressOp[] = "SimhashCompress";
constexpr char kDecompressOp[] = "SimhashDecompress";
constexpr char kProjectionOp[] = "SimhashProjection";

namespace {

absl::Status SizeError(const char* op, const std::string& error) {
  if (error.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", error));
}

// Reads `seed` (>= 0, used as a uint64); `Context` is an InferenceContext or an
// OpKernelConstruction, so the shape functions and the kernels apply the same rules.
template <typename Context>
absl::Status ReadSeed(Context* context, const char* op, uint64_t* seed) {
  int64_t value;
  TF_RETURN_IF_ERROR(context->GetAttr("seed", &value));
  if (value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": `seed` must be >= 0, got ", value));
  }
  *seed = static_cast<uint64_t>(value);
  return absl::OkStatus();
}

// Reads `projection` ("gaussian" or "hadamard").
template <typename Context>
absl::Status ReadProjection(Context* context, const char* op, matcomp::ProjectionKind* kind) {
  std::string name;
  TF_RETURN_IF_ERROR(context->GetAttr("projection", &name));
  return SizeError(op, matcomp::ParseProjectionKind(name, kind));
}

template <typename Context>
absl::Status ReadCompressAttributes(Context* context, int64_t* num_bits, uint64_t* seed,
                                    matcomp::ProjectionKind* projection,
                                    matcomp::SimhashScale* scale) {
  std::string scale_name;
  TF_RETURN_IF_ERROR(context->GetAttr("num_bits", num_bits));
  TF_RETURN_IF_ERROR(context->GetAttr("scale", &scale_name));
  TF_RETURN_IF_ERROR(ReadSeed(context, kCompressOp, seed));
  TF_RETURN_IF_ERROR(ReadProjection(context, kCompressOp, projection));
  TF_RETURN_IF_ERROR(SizeError(kCompressOp, matcomp::ValidateSimhashSizes(0, 0, *num_bits, "")));
  if (scale_name == "least_squares") {
    *scale = matcomp::SimhashScale::kLeastSquares;
  } else if (scale_name == "norm") {
    *scale = matcomp::SimhashScale::kNorm;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        kCompressOp, ": `scale` must be \"least_squares\" or \"norm\", got \"", scale_name, "\""));
  }
  return absl::OkStatus();
}

template <typename Context>
absl::Status ReadDecompressAttributes(Context* context, int64_t* num_rows, uint64_t* seed,
                                      matcomp::ProjectionKind* projection) {
  TF_RETURN_IF_ERROR(context->GetAttr("num_rows", num_rows));
  TF_RETURN_IF_ERROR(ReadSeed(context, kDecompressOp, seed));
  TF_RETURN_IF_ERROR(ReadProjection(context, kDecompressOp, projection));
  return SizeError(kDecompressOp, matcomp::ValidateSimhashSizes(*num_rows, 0, 1, "`num_rows`"));
}

template <typename Context>
absl::Status ReadProjectionAttributes(Context* context, int64_t* num_rows, int64_t* num_bits,
                                      uint64_t* seed, matcomp::ProjectionKind* projection) {
  TF_RETURN_IF_ERROR(context->GetAttr("num_rows", num_rows));
  TF_RETURN_IF_ERROR(context->GetAttr("num_bits", num_bits));
  TF_RETURN_IF_ERROR(ReadSeed(context, kProjectionOp, seed));
  TF_RETURN_IF_ERROR(ReadProjection(context, kProjectionOp, projection));
  return SizeError(kProjectionOp,
                   matcomp::ValidateSimhashSizes(*num_rows, 0, *num_bits, "`num_rows`"));
}

// signs [num_bits >= 1, ceil(n / 8)] for scales [n].
absl::Status SignsMatchScales(int64_t num_bits, int64_t packed, int64_t columns) {
  if (num_bits < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kDecompressOp, ": `signs` must have at least one row (num_bits >= 1), got none"));
  }
  if (packed != matcomp::PackedWidth(columns)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kDecompressOp, ": `signs` must have ceil(n / 8) = ", matcomp::PackedWidth(columns),
        " columns for `scales` of length n = ", columns, ", got ", packed));
  }
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("Matcomp>SimhashCompress")
    .Input("a: T")
    .Output("signs: uint8")
    .Output("scales: T")
    .Attr("T: {float, double}")
    .Attr("num_bits: int")
    .Attr("seed: int = 0")
    .Attr("scale: string = 'least_squares'")
    .Attr("projection: string = 'gaussian'")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      int64_t num_bits;
      uint64_t seed;
      matcomp::ProjectionKind projection;
      matcomp::SimhashScale scale;
      TF_RETURN_IF_ERROR(ReadCompressAttributes(c, &num_bits, &seed, &projection, &scale));
      ShapeHandle a;
      TF_RETURN_IF_ERROR(RequireRank(c, 0, 2, kCompressOp, "a", &a));
      const DimensionHandle rows = c->Dim(a, 0), columns = c->Dim(a, 1);
      if (c->ValueKnown(rows) && c->ValueKnown(columns)) {
        TF_RETURN_IF_ERROR(
            SizeError(kCompressOp, matcomp::ValidateSimhashSizes(c->Value(rows), c->Value(columns),
                                                                 num_bits, "the rows of `a`")));
      }
      const DimensionHandle packed = c->ValueKnown(columns)
                                         ? c->MakeDim(matcomp::PackedWidth(c->Value(columns)))
                                         : c->UnknownDim();
      c->set_output(0, c->Matrix(num_bits, packed));
      c->set_output(1, c->Vector(columns));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Simhash compression a ≈ R · S · diag(scales), S = sign(Rᵀ a) (sign(0) = +1), R [m, num_bits]
regenerated from (seed, row, col): projection "gaussian" (cc/core/counter_rng.h) or "hadamard"
(signed Walsh–Hadamard columns, cc/core/hadamard.h).

a: [m, n], finite.
signs: [num_bits, ceil(n / 8)]; column j of S is bit j % 8 (least significant first) of byte
  j / 8, 1 meaning +1; padding bits are 0.
scales: [n]; "least_squares": <a_j, (R S)_j> / |(R S)_j|², "norm": |a_j| / |(R S)_j|.
)doc");

REGISTER_OP("Matcomp>SimhashDecompress")
    .Input("signs: uint8")
    .Input("scales: T")
    .Output("out: T")
    .Attr("T: {float, double}")
    .Attr("num_rows: int")
    .Attr("seed: int = 0")
    .Attr("projection: string = 'gaussian'")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      int64_t num_rows;
      uint64_t seed;
      matcomp::ProjectionKind projection;
      TF_RETURN_IF_ERROR(ReadDecompressAttributes(c, &num_rows, &seed, &projection));
      ShapeHandle signs, scales;
      TF_RETURN_IF_ERROR(RequireRank(c, 0, 2, kDecompressOp, "signs", &signs));
      TF_RETURN_IF_ERROR(RequireRank(c, 1, 1, kDecompressOp, "scales", &scales));
      const DimensionHandle bits = c->Dim(signs, 0), packed = c->Dim(signs, 1),
                            columns = c->Dim(scales, 0);
      if (c->ValueKnown(bits) && c->ValueKnown(packed) && c->ValueKnown(columns)) {
        TF_RETURN_IF_ERROR(SignsMatchScales(c->Value(bits), c->Value(packed), c->Value(columns)));
        TF_RETURN_IF_ERROR(
            SizeError(kDecompressOp, matcomp::ValidateSimhashSizes(num_rows, c->Value(columns),
                                                                   c->Value(bits), "`num_rows`")));
      }
      c->set_output(0, c->Matrix(num_rows, columns));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Simhash decompression: out = R · S · diag(scales), R [num_rows, num_bits] regenerated from
(seed, row, col), S the ±1 matrix packed in signs (layout of SimhashCompress; padding bits
ignored).

signs: [num_bits, ceil(n / 8)]. scales: [n]. out: [num_rows, n].
)doc");

REGISTER_OP("Matcomp>SimhashProjection")
    .Output("r: T")
    .Attr("T: {float, double}")
    .Attr("num_rows: int")
    .Attr("num_bits: int")
    .Attr("seed: int = 0")
    .Attr("projection: string = 'gaussian'")
    .SetShapeFn([](InferenceContext* c) -> absl::Status {
      int64_t num_rows, num_bits;
      uint64_t seed;
      matcomp::ProjectionKind projection;
      TF_RETURN_IF_ERROR(ReadProjectionAttributes(c, &num_rows, &num_bits, &seed, &projection));
      c->set_output(0, c->Matrix(num_rows, num_bits));
      return absl::OkStatus();
    })
    .Doc(R"doc(
The simhash projection R [num_rows, num_bits]: R[row, col] from (seed, row, col), "gaussian" by
the counter-based generator of cc/core/counter_rng.h (mean 0, variance 1), "hadamard" the ±1
entries of cc/core/hadamard.h.
)doc");

namespace functor {

template <typename T>
struct SimhashCompress<CPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, typename tensorflow::TTypes<T>::ConstMatrix a,
                          uint64_t seed, matcomp::ProjectionKind projection,
                          matcomp::SimhashScale scale,
                          typename tensorflow::TTypes<tensorflow::uint8>::Matrix signs,
                          typename tensorflow::TTypes<T>::Vec scales, bool* finite) {
    return ReportingOutOfMemory(kCompressOp, [&] {
      const int64_t rows = a.dimension(0), cols = a.dimension(1), k = signs.dimension(0);
      const matcomp::ParallelFor parallel_for = TfParallelFor(context);
      std::shared_ptr<const std::vector<T>> gram;
      if (projection == matcomp::ProjectionKind::kGaussian &&
          matcomp::SimhashThroughGram(rows, cols, k)) {
        gram = gram_cache_.Get(seed, rows, k, parallel_for);
      }
      *finite =
          matcomp::SimhashCompress(a.data(), rows, cols, k, seed, projection, scale, parallel_for,
                                   signs.data(), scales.data(), gram ? gram->data() : nullptr);
    });
  }

 private:
  GaussianGramCache<T> gram_cache_;  // this kernel's G between calls (simhash_gram_cache.h)
};

template <typename T>
struct SimhashDecompress<CPUDevice, T> {
  absl::Status operator()(OpKernelContext* context,
                          typename tensorflow::TTypes<tensorflow::uint8>::ConstMatrix signs,
                          typename tensorflow::TTypes<T>::ConstVec scales, uint64_t seed,
                          matcomp::ProjectionKind projection,
                          typename tensorflow::TTypes<T>::Matrix out) {
    return ReportingOutOfMemory(kDecompressOp, [&] {
      matcomp::SimhashDecompress(signs.data(), scales.data(), out.dimension(0), out.dimension(1),
                                 signs.dimension(0), seed, projection, TfParallelFor(context),
                                 out.data());
    });
  }
};

template <typename T>
struct SimhashProjection<CPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, uint64_t seed, matcomp::ProjectionKind kind,
                          typename tensorflow::TTypes<T>::Matrix projection) {
    // R is the output itself: no scratch to run out of.
    matcomp::FillProjection(seed, kind, projection.dimension(0), projection.dimension(1),
                            TfParallelFor(context), projection.data());
    return absl::OkStatus();
  }
};

}  // namespace functor

template <typename Device, typename T>
class SimhashCompressOp : public OpKernel {
 public:
  explicit SimhashCompressOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context,
                   ReadCompressAttributes(context, &num_bits_, &seed_, &projection_, &scale_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& a = context->input(0);
    OP_REQUIRES(context, TensorShapeUtils::IsMatrix(a.shape()),
                absl::InvalidArgumentError(absl::StrCat(
                    kCompressOp, ": `a` must have rank 2, got shape ", a.shape().DebugString())));
    const int64_t rows = a.dim_size(0), columns = a.dim_size(1);
    OP_REQUIRES_OK(context,
                   SizeError(kCompressOp, matcomp::ValidateSimhashSizes(rows, columns, num_bits_,
                                                                        "the rows of `a`")));
    Tensor* signs = nullptr;
    Tensor* scales = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       0, TensorShape({num_bits_, matcomp::PackedWidth(columns)}), &signs));
    OP_REQUIRES_OK(context, context->allocate_output(1, TensorShape({columns}), &scales));
    bool finite = true;
    OP_REQUIRES_OK(context,
                   compress_(context, a.matrix<T>(), seed_, projection_, scale_,
                             signs->matrix<tensorflow::uint8>(), scales->vec<T>(), &finite));
    OP_REQUIRES(context, finite,
                absl::InvalidArgumentError(
                    absl::StrCat(kCompressOp,
                                 ": `a` must contain only finite values (got NaN or infinity in "
                                 "`a`, or Rᵀa overflows)")));
  }

 private:
  int64_t num_bits_ = 1;
  uint64_t seed_ = 0;
  matcomp::ProjectionKind projection_ = matcomp::ProjectionKind::kGaussian;
  matcomp::SimhashScale scale_ = matcomp::SimhashScale::kLeastSquares;
  // One functor per kernel: the CPU one keeps the projection's Gram matrix between calls.
  functor::SimhashCompress<Device, T> compress_;
};

template <typename Device, typename T>
class SimhashDecompressOp : public OpKernel {
 public:
  explicit SimhashDecompressOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, ReadDecompressAttributes(context, &num_rows_, &seed_, &projection_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& signs = context->input(0);
    const Tensor& scales = context->input(1);
    OP_REQUIRES(
        context, TensorShapeUtils::IsMatrix(signs.shape()),
        absl::InvalidArgumentError(absl::StrCat(
            kDecompressOp, ": `signs` must have rank 2, got shape ", signs.shape().DebugString())));
    OP_REQUIRES(context, TensorShapeUtils::IsVector(scales.shape()),
                absl::InvalidArgumentError(absl::StrCat(kDecompressOp,
                                                        ": `scales` must have rank 1, got shape ",
                                                        scales.shape().DebugString())));
    const int64_t num_bits = signs.dim_size(0), columns = scales.dim_size(0);
    OP_REQUIRES_OK(context, SignsMatchScales(num_bits, signs.dim_size(1), columns));
    OP_REQUIRES_OK(context,
                   SizeError(kDecompressOp, matcomp::ValidateSimhashSizes(num_rows_, columns,
                                                                          num_bits, "`num_rows`")));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, TensorShape({num_rows_, columns}), &out));
    OP_REQUIRES_OK(context, functor::SimhashDecompress<Device, T>()(
                                context, signs.matrix<tensorflow::uint8>(), scales.vec<T>(), seed_,
                                projection_, out->matrix<T>()));
  }

 private:
  int64_t num_rows_ = 0;
  uint64_t seed_ = 0;
  matcomp::ProjectionKind projection_ = matcomp::ProjectionKind::kGaussian;
};

template <typename Device, typename T>
class SimhashProjectionOp : public OpKernel {
 public:
  explicit SimhashProjectionOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context,
                   ReadProjectionAttributes(context, &num_rows_, &num_bits_, &seed_, &projection_));
  }

  void Compute(OpKernelContext* context) override {
    Tensor* projection = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, TensorShape({num_rows_, num_bits_}), &projection));
    OP_REQUIRES_OK(context, functor::SimhashProjection<Device, T>()(context, seed_, projection_,
                                                                    projection->matrix<T>()));
  }

 private:
  int64_t num_rows_ = 0;
  int64_t num_bits_ = 1;
  uint64_t seed_ = 0;
  matcomp::ProjectionKind projection_ = matcomp::ProjectionKind::kGaussian;
};

#define REGISTER(kind, Dev, T)                                                                   \
  REGISTER_KERNEL_BUILDER(Name("Matcomp>SimhashCompress").Device(kind).TypeConstraint<T>("T"),   \
                          SimhashCompressOp<Dev, T>);                                            \
  REGISTER_KERNEL_BUILDER(Name("Matcomp>SimhashDecompress").Device(kind).TypeConstraint<T>("T"), \
                          SimhashDecompressOp<Dev, T>);                                          \
  REGISTER_KERNEL_BUILDER(Name("Matcomp>SimhashProjection").Device(kind).TypeConstraint<T>("T"), \
                          SimhashProjectionOp<Dev, T>);
REGISTER(tensorflow::DEVICE_CPU, CPUDevice, float);
REGISTER(tensorflow::DEVICE_CPU, CPUDevice, double);
#if GOOGLE_CUDA
REGISTER(tensorflow::DEVICE_GPU, Eigen::GpuDevice, float);
REGISTER(tensorflow::DEVICE_GPU, Eigen::GpuDevice, double);
#endif  // GOOGLE_CUDA
#undef REGISTER

}  // namespace tf_matcomp
