// GPU functors of Matcomp>KMeansQuantize.
//
// *** A documented hybrid: not every step runs on the device. ***
//   On the device: the range check, and every O(N) or O(N·k) pass over the points:
//     - block_size 1: min/max, the kScalarHistogramBins-bin histogram (counts and offset sums
//       as integers, so its atomics are exact and order-independent), and the final coding by
//       the shared O(1) boundary search (ScalarCodeView::Code);
//     - block_size > 1: the final assignment (NearestCentroid, the CPU's own distance code).
//   On the host (cc/core, the CPU kernel's code, on TF's CPU thread pool):
//     - block_size 1: Lloyd (or the optimal DP) on the histogram's <= 32,768 atoms, copied to
//       the host; with <= kScalarExactLimit values, or when the histogram is too coarse for the
//       data (cc/core/kmeans_scalar.cc), the values themselves are copied and their distinct
//       values used, as on the CPU;
//     - block_size > 1: k-means++ seeding and Lloyd's iterations on a host copy of the points
//       (so the codebook equals the CPU kernel's bit for bit), then the device assignment above
//       (the same code; its distance sums may differ from the host's by FMA contraction, which
//       nvcc and g++ -march=native apply, a portable x86-64 build not, so codes can differ
//       where two distances tie within one rounding).
//   A device vector path (distance GEMM + argmin per Lloyd iteration, device k-means++) is
//   future work; the host copy costs one transfer of `a` per call.
// Determinism: integer atomics only; host steps are the CPU's thread-count-independent code. The
// scalar path's histogram sums are fixed point (2^-32 of a bin width), so its centroids can
// differ from the CPU kernel's in the last digits, and codes of values on a boundary with them.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <float.h>

#include <memory>
#include <utility>
#include <vector>

#include "cc/core/kmeans_internal.h"
#include "cc/core/kmeans_math.h"
#include "cc/kernels/gpu_util.h"
#include "cc/kernels/kmeans.h"
#include "cc/kernels/tf_parallel.h"

namespace tf_matcomp {
namespace functor {
namespace {

namespace internal = ::matcomp::kmeans_internal;
using gpu::Blocks;
using gpu::GPUDevice;
using gpu::kThreads;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TTypes;

template <typename T>
__global__ void OutOfRangeKernel(const T* values, int64_t count, int* out_of_range) {
  MATCOMP_GRID_STRIDE(i, count) {
    if (!matcomp::InKMeansRange(static_cast<double>(values[i]))) *out_of_range = 1;
  }
}

// Per-block minimum and maximum (exact, so independent of the order of the values).
template <typename T>
__global__ void MinMaxKernel(const T* values, int64_t count, double* block_min, double* block_max) {
  __shared__ double lows[kThreads], highs[kThreads];
  double low = DBL_MAX, high = -DBL_MAX;
  MATCOMP_GRID_STRIDE(i, count) {
    const double x = static_cast<double>(values[i]);
    low = fmin(low, x);
    high = fmax(high, x);
  }
  lows[threadIdx.x] = low, highs[threadIdx.x] = high;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      lows[threadIdx.x] = fmin(lows[threadIdx.x], lows[threadIdx.x + half]);
      highs[threadIdx.x] = fmax(highs[threadIdx.x], highs[threadIdx.x + half]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) block_min[blockIdx.x] = lows[0], block_max[blockIdx.x] = highs[0];
}

template <typename T>
__global__ void HistogramKernel(const T* values, int64_t count, double low, double width,
                                double scale, unsigned long long* counts,
                                unsigned long long* fixed_sums) {
  MATCOMP_GRID_STRIDE(i, count) {
    const double x = static_cast<double>(values[i]);
    const int64_t bin = matcomp::HistogramBinOf(x, low, scale, matcomp::kScalarHistogramBins);
    atomicAdd(counts + bin, 1ull);
    atomicAdd(fixed_sums + bin,
              static_cast<unsigned long long>(matcomp::HistogramFixedOffset(x, low, bin, width)));
  }
}

template <typename T, typename Code>
__global__ void AssignScalarKernel(const T* values, int64_t count, matcomp::ScalarCodeView view,
                                   Code* codes) {
  MATCOMP_GRID_STRIDE(i, count) {
    codes[i] = static_cast<Code>(view.Code(static_cast<double>(values[i])));
  }
}

template <typename T, typename Code>
__global__ void AssignVectorsKernel(const T* points, int64_t count, int64_t dim,
                                    const double* centroids, int64_t k, Code* codes) {
  MATCOMP_GRID_STRIDE(i, count) {
    double distance;
    codes[i] =
        static_cast<Code>(matcomp::NearestCentroid(points + i * dim, centroids, k, dim, &distance));
  }
}

template <typename T>
absl::Status MinMax(OpKernelContext* context, const T* values, int64_t count, double* low,
                    double* high) {
  const int blocks = Blocks(count);
  Tensor lows_tensor, highs_tensor;
  double *lows = nullptr, *highs = nullptr;
  TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, blocks, &lows_tensor, &lows));
  TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, blocks, &highs_tensor, &highs));
  MinMaxKernel<<<blocks, kThreads, 0, context->eigen_gpu_device().stream()>>>(values, count, lows,
                                                                              highs);
  TF_RETURN_IF_ERROR(gpu::LaunchStatus("MinMaxKernel"));
  std::vector<double> host_lows, host_highs;
  TF_RETURN_IF_ERROR(gpu::ToHost(context, lows, blocks, &host_lows));
  TF_RETURN_IF_ERROR(gpu::ToHost(context, highs, blocks, &host_highs));
  *low = *std::min_element(host_lows.begin(), host_lows.end());
  *high = *std::max_element(host_highs.begin(), host_highs.end());
  return absl::OkStatus();
}

template <typename T>
absl::Status Histogram(OpKernelContext* context, const T* values, int64_t count, double low,
                       double high, std::vector<internal::HistogramBin>* bins) {
  constexpr int64_t kBins = matcomp::kScalarHistogramBins;
  const double width = (high - low) / kBins, scale = kBins / (high - low);
  Tensor table_tensor;
  unsigned long long* table = nullptr;  // counts [kBins], then fixed-point offset sums [kBins]
  TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, 2 * kBins, &table_tensor, &table));
  const GPUDevice& device = context->eigen_gpu_device();
  device.memset(table, 0, 2 * kBins * sizeof(unsigned long long));
  HistogramKernel<<<Blocks(count), kThreads, 0, device.stream()>>>(values, count, low, width, scale,
                                                                   table, table + kBins);
  TF_RETURN_IF_ERROR(gpu::LaunchStatus("HistogramKernel"));
  std::vector<unsigned long long> host;
  TF_RETURN_IF_ERROR(gpu::ToHost(context, table, 2 * kBins, &host));
  bins->resize(kBins);
  for (int64_t b = 0; b < kBins; ++b) {
    (*bins)[b].count = static_cast<double>(host[b]);
    (*bins)[b].offset_sum = matcomp::HistogramOffsetSum(host[kBins + b], width);
  }
  return absl::OkStatus();
}

// The 1-D fit (see the file comment): the atoms as the CPU's MakeAtoms chooses them, with the
// O(N) passes on the device, then FitAtoms on the host.
template <typename T>
absl::Status FitScalar(OpKernelContext* context, const T* values, int64_t count,
                       const matcomp::KMeansOptions& options, std::vector<double>* centroids) {
  internal::Atoms atoms;
  bool from_histogram = false;
  if (count > matcomp::kScalarExactLimit) {
    double low, high;
    TF_RETURN_IF_ERROR(MinMax(context, values, count, &low, &high));
    if (matcomp::HistogramResolves(low, high, matcomp::kScalarHistogramBins)) {
      std::vector<internal::HistogramBin> bins;
      TF_RETURN_IF_ERROR(Histogram(context, values, count, low, high, &bins));
      from_histogram =
          internal::AtomsFromHistogram(bins, count, low, high, options.num_clusters, &atoms);
    }
  }
  if (!from_histogram) {
    std::vector<T> host;
    TF_RETURN_IF_ERROR(gpu::ToHost(context, values, count, &host));
    atoms = internal::DistinctValues(host.data(), count);
  }
  *centroids = internal::FitAtoms(std::move(atoms), options);
  return absl::OkStatus();
}

}  // namespace

template <typename T>
struct KMeansInRange<GPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, typename TTypes<T>::ConstFlat a,
                          bool* in_range) {
    *in_range = true;
    if (a.size() == 0) return absl::OkStatus();
    Tensor flag_tensor;
    int* flag = nullptr;
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, 1, &flag_tensor, &flag));
    const GPUDevice& device = context->eigen_gpu_device();
    device.memset(flag, 0, sizeof(int));
    OutOfRangeKernel<<<Blocks(a.size()), kThreads, 0, device.stream()>>>(a.data(), a.size(), flag);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("OutOfRangeKernel"));
    std::vector<int> host;
    TF_RETURN_IF_ERROR(gpu::ToHost(context, flag, 1, &host));
    *in_range = host[0] == 0;
    return absl::OkStatus();
  }
};

template <typename T, typename Code>
struct KMeansQuantize<GPUDevice, T, Code> {
  absl::Status operator()(OpKernelContext* context, typename TTypes<T>::ConstMatrix points,
                          const matcomp::KMeansOptions& options,
                          typename TTypes<T>::Matrix codebook, typename TTypes<Code>::Flat codes) {
    const int64_t count = points.dimension(0), dim = points.dimension(1);
    const cudaStream_t stream = context->eigen_gpu_device().stream();
    std::vector<double> centroids;
    std::vector<T> host_points;  // block_size > 1 only
    if (count > 0 && dim == 1) {
      TF_RETURN_IF_ERROR(FitScalar(context, points.data(), count, options, &centroids));
    } else if (count > 0) {
      TF_RETURN_IF_ERROR(gpu::ToHost(context, points.data(), count * dim, &host_points));
      centroids =
          internal::FitVectors(host_points.data(), count, dim, options, TfParallelFor(context));
    }
    std::vector<T> host_codebook(codebook.size());
    centroids = internal::FinishCodebook(std::move(centroids), dim, options, host_codebook.data());
    context->eigen_gpu_device().memcpyHostToDevice(codebook.data(), host_codebook.data(),
                                                   host_codebook.size() * sizeof(T));
    Tensor boundary_tensor, below_tensor, first_tensor, centroid_tensor;
    // Host tables that the copies below read: alive until the final Synchronize.
    std::unique_ptr<internal::ScalarCodeTable> table_holder;
    if (count > 0 && dim == 1) {
      table_holder = std::make_unique<internal::ScalarCodeTable>(centroids);
      const internal::ScalarCodeTable& table = *table_holder;
      matcomp::ScalarCodeView view = table.View();
      double *boundary = nullptr, *first = nullptr;
      int32_t* below = nullptr;
      TF_RETURN_IF_ERROR(gpu::ToDevice(context, table.boundary, &boundary_tensor, &boundary));
      TF_RETURN_IF_ERROR(gpu::ToDevice(context, table.below, &below_tensor, &below));
      TF_RETURN_IF_ERROR(gpu::ToDevice(context, table.first, &first_tensor, &first));
      view.boundary = boundary, view.below = below, view.first = first;
      AssignScalarKernel<<<Blocks(count), kThreads, 0, stream>>>(points.data(), count, view,
                                                                 codes.data());
      TF_RETURN_IF_ERROR(gpu::LaunchStatus("AssignScalarKernel"));
    } else if (count > 0) {
      double* device_centroids = nullptr;
      TF_RETURN_IF_ERROR(gpu::ToDevice(context, centroids, &centroid_tensor, &device_centroids));
      AssignVectorsKernel<<<Blocks(count), kThreads, 0, stream>>>(
          points.data(), count, dim, device_centroids, static_cast<int64_t>(centroids.size()) / dim,
          codes.data());
      TF_RETURN_IF_ERROR(gpu::LaunchStatus("AssignVectorsKernel"));
    }
    // The host buffers are freed on return: wait for the copies that read them.
    return gpu::Synchronize(context);
  }
};

#define MATCOMP_INSTANTIATE_GPU(T)                                 \
  template struct KMeansInRange<GPUDevice, T>;                     \
  template struct KMeansQuantize<GPUDevice, T, tensorflow::uint8>; \
  template struct KMeansQuantize<GPUDevice, T, tensorflow::int32>;
MATCOMP_INSTANTIATE_GPU(float)
MATCOMP_INSTANTIATE_GPU(double)
#undef MATCOMP_INSTANTIATE_GPU

}  // namespace functor
}  // namespace tf_matcomp

#endif  // GOOGLE_CUDA
