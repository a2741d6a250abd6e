// GPU functor of Matcomp>LowRankBlend: W = A, then one GEMM with a beta term,
// W ← (1 − alpha)·B·C + alpha·W, through TF's stream-executor BLAS (see gpu_blas.h). No m×n
// temporary and no blend pass: cuBLAS applies beta while writing its output tiles. When the
// kernel could forward A's buffer into W (A not used elsewhere), the copy is skipped too.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include "cc/core/blend.h"
#include "cc/kernels/gpu_blas.h"
#include "cc/kernels/low_rank_blend.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tf_matcomp {
namespace functor {

using GPUDevice = Eigen::GpuDevice;

template <typename T>
struct LowRankBlend<GPUDevice, T> {
  absl::Status operator()(tensorflow::OpKernelContext* context,
                          typename tensorflow::TTypes<T>::ConstMatrix a,
                          typename tensorflow::TTypes<T>::ConstMatrix b,
                          typename tensorflow::TTypes<T>::ConstMatrix c, T alpha,
                          typename tensorflow::TTypes<T>::Matrix w) {
    const GPUDevice& device = context->eigen_gpu_device();
    const int64_t m = a.dimension(0), n = a.dimension(1), k = b.dimension(1);
    if (k == 0) {  // An empty product is zero: only the dense part remains.
      w.device(device) = a * alpha;
      return absl::OkStatus();
    }
    if (w.data() != a.data()) device.memcpy(w.data(), a.data(), m * n * sizeof(T));
    const auto blend_alpha = static_cast<matcomp::BlendAccumulator<T>>(alpha);
    return GpuGemm<T>(context, /*transpose_a=*/false, /*transpose_b=*/false, m, n, k,
                      matcomp::BlendAccumulator<T>(1) - blend_alpha, b.data(), k, c.data(), n,
                      blend_alpha, w.data(), n);
  }
};

template struct LowRankBlend<GPUDevice, float>;
template struct LowRankBlend<GPUDevice, double>;
template struct LowRankBlend<GPUDevice, Eigen::half>;
template struct LowRankBlend<GPUDevice, Eigen::bfloat16>;

}  // namespace functor
}  // namespace tf_matcomp

#endif  // GOOGLE_CUDA
