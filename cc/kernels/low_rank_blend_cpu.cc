// The CPU functor of Matcomp>LowRankBlend: the blend fused into Eigen's contraction on TF's
// thread pool. No GOOGLE_CUDA in here, so CPU and GPU builds share this (slow to compile) object.
//
// Results are bit-identical whatever the number of intra-op threads: every choice that changes
// the order of the sums (row bands, Eigen's blocking and sharding) depends on the shapes only.
#define EIGEN_USE_THREADS

#include <algorithm>
#include <type_traits>

#include "cc/core/blend.h"
#include "cc/core/blend_small_inner.h"
#include "cc/kernels/low_rank_blend.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tf_matcomp {

using ::tensorflow::OpKernelContext;
using CPUDevice = Eigen::ThreadPoolDevice;
using Index = Eigen::Index;
using matcomp::BlendAccumulator;

namespace {

// Eigen calls this on every finished block of the product, while the block is still in cache,
// so the blend costs no extra pass over W. Row-major tensors are contracted as their swapped
// column-major transposes: mapper rows run along W's columns (starting at i) and mapper columns
// along W's rows (starting at j). `a` and `w` point at the product's origin in A and W, whose
// rows are `stride` apart; W may be the product's own buffer.
template <typename T>
struct BlendOutputKernel {
  const T* a;
  T* w;
  Index stride;
  BlendAccumulator<T> alpha;

  template <typename Scalar>
  EIGEN_ALWAYS_INLINE void operator()(
      const Eigen::internal::blas_data_mapper<Scalar, Index, Eigen::ColMajor>& out,
      const Eigen::TensorContractionParams& params, Index i, Index j, Index num_rows,
      Index num_cols) const {
    eigen_assert(params.swapped_arguments);
    for (Index col = 0; col < num_cols; ++col) {
      const Index offset = (j + col) * stride + i;
      matcomp::BlendInto<T, BlendAccumulator<T>>(a + offset, &out(0, col), w + offset, num_rows,
                                                 alpha);
    }
  }
};

constexpr Eigen::array<Eigen::IndexPair<Index>, 1> kContractDims = {Eigen::IndexPair<Index>(1, 0)};

// Up to this inner dimension (float and double) the product runs in cc/core/blend_small_inner.h
// rather than Eigen's GEMM, which packs its operands again for every block (at small k that
// costs as much as the math), on bands of kSmallInnerBand rows (a multiple of its row tile).
constexpr Index kMaxInnerForSmallKernel = 64;
constexpr Index kSmallInnerBand = 16 * matcomp::kSmallInnerRows;

// Up to this inner dimension Eigen's threaded contraction spends more on coordination than on
// math (measured at 4096²·64: 1.2x the time of row bands): W's rows are sharded into bands of
// kRowsPerBand instead, each contracted on one thread, still with the blend fused. A band's
// sums depend on its shape only.
constexpr Index kMaxInnerForRowBands = 64;
constexpr Index kRowsPerBand = 128;

// The thread count Eigen's threaded contraction is told to plan for (its blocking and its
// sharding over k follow it); the pool's real threads only run the resulting tasks, so the
// sums never depend on how many there are.
constexpr int kPlannedThreads = 8;

// W = alpha·A + (1 − alpha)·B·C by cc/core/blend_small_inner.h, on bands of rows.
template <typename T>
absl::Status SmallInnerBlend(OpKernelContext* context,
                             typename tensorflow::TTypes<T>::ConstMatrix a,
                             typename tensorflow::TTypes<T>::ConstMatrix b,
                             typename tensorflow::TTypes<T>::ConstMatrix c, T alpha,
                             typename tensorflow::TTypes<T>::Matrix w) {
  const Index m = a.dimension(0), n = a.dimension(1), k = b.dimension(1);
  tensorflow::Tensor packed;
  TF_RETURN_IF_ERROR(context->allocate_temp(
      tensorflow::DataTypeToEnum<T>::value,
      tensorflow::TensorShape({matcomp::SmallInnerPackedSize<T>(k, n)}), &packed));
  T* panels = packed.flat<T>().data();
  matcomp::PackSmallInnerC(c.data(), k, n, panels);
  const bool stream = m * n * static_cast<Index>(sizeof(T)) >= matcomp::simd::kStreamingStoreBytes;
  const Index bands = Eigen::divup(m, kSmallInnerBand);
  const Eigen::TensorOpCost band_cost(8.0 * kSmallInnerBand * n, 4.0 * kSmallInnerBand * n,
                                      2.0 * kSmallInnerBand * n * k);
  context->eigen_device<CPUDevice>().parallelFor(bands, band_cost, [&](Index first, Index last) {
    for (Index band = first; band < last; ++band) {
      const Index row = band * kSmallInnerBand, rows = std::min(kSmallInnerBand, m - row);
      matcomp::BlendSmallInner(a.data() + row * n, b.data() + row * k, panels, w.data() + row * n,
                               rows, n, k, alpha, stream);
    }
  });
  return absl::OkStatus();
}

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
    const Index m = a.dimension(0), n = a.dimension(1), k = b.dimension(1);
    const auto blend_alpha = static_cast<BlendAccumulator<T>>(alpha);
    if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value) {
      if (k <= kMaxInnerForSmallKernel) return SmallInnerBlend(context, a, b, c, alpha, w);
    }
    if (k <= kMaxInnerForRowBands) {
      const Index bands = Eigen::divup(m, kRowsPerBand);
      const Eigen::TensorOpCost band_cost(0, 0, 2.0 * kRowsPerBand * n * k);
      device.parallelFor(bands, band_cost, [&](Index first, Index last) {
        for (Index band = first; band < last; ++band) {
          const Index row = band * kRowsPerBand, rows = std::min(kRowsPerBand, m - row);
          const typename tensorflow::TTypes<T>::ConstMatrix b_band(b.data() + row * k, rows, k);
          typename tensorflow::TTypes<T>::Matrix w_band(w.data() + row * n, rows, n);
          w_band = b_band.contract(
              c, kContractDims,
              BlendOutputKernel<T>{a.data() + row * n, w_band.data(), n, blend_alpha});
        }
      });
      return absl::OkStatus();
    }
    const CPUDevice planned(device.getPool(), kPlannedThreads, device.allocator());
    w.device(planned) =
        b.contract(c, kContractDims, BlendOutputKernel<T>{a.data(), w.data(), n, blend_alpha});
    return absl::OkStatus();
  }
};

}  // namespace functor

template struct functor::LowRankBlend<CPUDevice, float>;
template struct functor::LowRankBlend<CPUDevice, double>;
template struct functor::LowRankBlend<CPUDevice, Eigen::half>;
template struct functor::LowRankBlend<CPUDevice, Eigen::bfloat16>;

}  // namespace tf_matcomp
