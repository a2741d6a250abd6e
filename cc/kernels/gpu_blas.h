// GEMMs of the GPU kernels, on the kernel's stream, through TensorFlow's own stream-executor
// BLAS (cuBLAS as the running TensorFlow loaded it).
//
// Why not cuBLAS directly: the pip CUDA build of TF 2.21 runs CUDA 12 and loads NVIDIA's cuBLAS
// 12 wheels itself; linking or dlopen'ing our own cuBLAS would have to match that major version
// and its handle/stream/workspace setup. Stream executor's BlasSupport is reached through virtual
// calls (Stream::parent, StreamExecutor::AsBlas, BlasSupport::DoBlasGemm), so the library needs
// no BLAS symbols at link time, loads in tensorflow-cpu, and always uses the cuBLAS, the
// TensorFloat-32 policy and the determinism setting of the TensorFlow it runs in.
#ifndef TF_MATCOMP_KERNELS_GPU_BLAS_H_
#define TF_MATCOMP_KERNELS_GPU_BLAS_H_

#if GOOGLE_CUDA

#include <cstdint>

#include "absl/status/status.h"
#include "cc/core/blend.h"

namespace tensorflow {
class OpKernelContext;
}

namespace tf_matcomp {

// Row-major c[m, n] = alpha · op(a) · op(b) + beta · c, op(x) = xᵀ when transpose_x, where
// op(a) is [m, k] and op(b) [k, n]; lda, ldb, ldc are the row strides of a, b, c as stored.
// T is Eigen::half, Eigen::bfloat16, float or double; 16-bit types accumulate and scale in float.
// float honours TensorFlow's TensorFloat-32 setting
// (tf.config.experimental.enable_tensor_float_32_execution).
template <typename T>
absl::Status GpuGemm(tensorflow::OpKernelContext* context, bool transpose_a, bool transpose_b,
                     int64_t m, int64_t n, int64_t k, matcomp::BlendAccumulator<T> alpha,
                     const T* a, int64_t lda, const T* b, int64_t ldb,
                     matcomp::BlendAccumulator<T> beta, T* c, int64_t ldc);

}  // namespace tf_matcomp

#endif  // GOOGLE_CUDA
#endif  // TF_MATCOMP_KERNELS_GPU_BLAS_H_
