// GpuGemm (see gpu_blas.h): host code, compiled by the C++ compiler in GPU builds only.
#if GOOGLE_CUDA

#include "cc/kernels/gpu_blas.h"

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/platform/tensor_float_32_utils.h"
#include "tensorflow/core/util/determinism.h"
#include "xla/stream_executor/blas.h"
#include "xla/stream_executor/stream.h"
#include "xla/stream_executor/stream_executor.h"

namespace tf_matcomp {

namespace se = ::stream_executor;

namespace {

// Bytes spanned by a row-major matrix of `rows` rows of `cols` values `stride` apart.
uint64_t SpanBytes(int64_t rows, int64_t cols, int64_t stride, size_t element) {
  return rows == 0 ? 0 : ((rows - 1) * stride + cols) * element;
}

se::DeviceAddressBase Address(const void* pointer, uint64_t bytes) {
  return se::DeviceAddressBase(const_cast<void*>(pointer), bytes);
}

se::blas::Transpose Flag(bool transpose) {
  return transpose ? se::blas::Transpose::kTranspose : se::blas::Transpose::kNoTranspose;
}

}  // namespace

template <typename T>
absl::Status GpuGemm(tensorflow::OpKernelContext* context, bool transpose_a, bool transpose_b,
                     int64_t m, int64_t n, int64_t k, matcomp::BlendAccumulator<T> alpha,
                     const T* a, int64_t lda, const T* b, int64_t ldb,
                     matcomp::BlendAccumulator<T> beta, T* c, int64_t ldc) {
  se::Stream* stream = context->op_device_context()->stream();
  if (stream == nullptr) return absl::InternalError("tf_matcomp: no GPU stream for the kernel");
  se::blas::BlasSupport* blas = stream->parent()->AsBlas();
  if (blas == nullptr) return absl::InternalError("tf_matcomp: no BLAS support on the stream");
  const se::DeviceAddress<T> a_memory(
      Address(a, transpose_a ? SpanBytes(k, m, lda, sizeof(T)) : SpanBytes(m, k, lda, sizeof(T))));
  const se::DeviceAddress<T> b_memory(
      Address(b, transpose_b ? SpanBytes(n, k, ldb, sizeof(T)) : SpanBytes(k, n, ldb, sizeof(T))));
  se::DeviceAddress<T> c_memory(Address(c, SpanBytes(m, n, ldc, sizeof(T))));
  const se::EngineOptions options(tensorflow::OpDeterminismRequired(),
                                  tensorflow::tensor_float_32_execution_enabled(),
                                  /*require_command_buffer=*/false);
  // BLAS is column-major: the row-major product c = op(a)·op(b) is the column-major
  // cᵀ = op(b)ᵀ·op(a)ᵀ, i.e. the same buffers with the operands swapped.
  return blas->BlasGemm(stream, Flag(transpose_b), Flag(transpose_a), n, m, k, alpha, b_memory,
                        static_cast<int>(ldb), a_memory, static_cast<int>(lda), beta, &c_memory,
                        static_cast<int>(ldc), options, se::blas::CallContext::kNone);
}

#define MATCOMP_INSTANTIATE_GEMM(T)                                                            \
  template absl::Status GpuGemm<T>(tensorflow::OpKernelContext*, bool, bool, int64_t, int64_t, \
                                   int64_t, matcomp::BlendAccumulator<T>, const T*, int64_t,   \
                                   const T*, int64_t, matcomp::BlendAccumulator<T>, T*, int64_t);
MATCOMP_INSTANTIATE_GEMM(Eigen::half)
MATCOMP_INSTANTIATE_GEMM(Eigen::bfloat16)
MATCOMP_INSTANTIATE_GEMM(float)
MATCOMP_INSTANTIATE_GEMM(double)
#undef MATCOMP_INSTANTIATE_GEMM

}  // namespace tf_matcomp

#endif  // GOOGLE_CUDA
