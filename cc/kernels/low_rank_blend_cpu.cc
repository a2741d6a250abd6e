// The CPU functor of Matcomp>LowRankBlend: the blend fused into Eigen's contraction on TF's
// thread pool. No GOOGLE_CUDA in here, so CPU and GPU builds share this (slow to compile) object.
#define EIGEN_USE_THREADS

#include "cc/core/blend.h"
#include "cc/kernels/low_rank_blend.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tf_matcomp {

using ::tensorflow::OpKernelContext;
using CPUDevice = Eigen::ThreadPoolDevice;
using matcomp::BlendAccumulator;

namespace {

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
  absl::Status operator()(OpKernelContext* context, typename tensorflow::TTypes<T>::ConstMatrix a,
                          typename tensorflow::TTypes<T>::ConstMatrix b,
                          typename tensorflow::TTypes<T>::ConstMatrix c, T alpha,
                          typename tensorflow::TTypes<T>::Matrix w) {
    const CPUDevice& device = context->eigen_device<CPUDevice>();
    if (b.dimension(1) == 0) {  // An empty product is zero: only the dense part remains.
      w.device(device) = a * alpha;
      return absl::OkStatus();
    }
    const Eigen::array<Eigen::IndexPair<Eigen::Index>, 1> contract_dims = {
        Eigen::IndexPair<Eigen::Index>(1, 0)};
    const Eigen::Index m = a.dimension(0), n = a.dimension(1), k = b.dimension(1);
    const auto blend_alpha = static_cast<BlendAccumulator<T>>(alpha);
    if (k > kMaxInnerForRowShards) {
      w.device(device) =
          b.contract(c, contract_dims, BlendOutputKernel<T>{a.data(), n, blend_alpha});
      return absl::OkStatus();
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
    return absl::OkStatus();
  }

 private:
  static constexpr Eigen::Index kMaxInnerForRowShards = 64;
  static constexpr Eigen::Index kRowsPerShard = 128;
};

}  // namespace functor

template struct functor::LowRankBlend<CPUDevice, float>;
template struct functor::LowRankBlend<CPUDevice, double>;
template struct functor::LowRankBlend<CPUDevice, Eigen::half>;
template struct functor::LowRankBlend<CPUDevice, Eigen::bfloat16>;

}  // namespace tf_matcomp
