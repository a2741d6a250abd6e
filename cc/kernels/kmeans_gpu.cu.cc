// GPU functors of Matcomp>KMeansQuantize.
//
// block_size 1, *a documented hybrid*: on the device the range check and every O(N) pass (min/
// max, the kScalarHistogramBins-bin histogram with integer counts and fixed-point offset sums,
// so its atomics are exact and order-independent, and the final coding by the shared O(1)
// boundary search, ScalarCodeView::Code); on the host (cc/core, the CPU kernel's code, on TF's
// CPU thread pool) Lloyd or the optimal DP on the histogram's <= 32,768 atoms. With <=
// kScalarExactLimit values, or a histogram too coarse for the data (cc/core/kmeans_scalar.cc),
// the values themselves are copied and their distinct values used, as on the CPU.
//
// block_size > 1: the loops of cc/core/kmeans_vector_fit.h (the CPU's k-means++ and Lloyd, one
// code) over DeviceVectorBackend below. Every pass over the points runs on the device: the
// k-means++ distance update with per-chunk tree sums, the assignment (NearestCentroid, the CPU's
// distance code, centroids cached in shared memory), and Lloyd's sums (a stable radix sort of
// the points by code, then fixed slices of each cluster). The host draws (a few KB of chunk totals
// and one chunk's distances per k-means++ step) and divides the k sums. The distances are direct
// double sums over the block, not a GEMM: a block has a few values (the GEMM's inner dimension
// would be block_size, memory-bound), and ‖x‖² − 2x·c + ‖c‖² cancels where points are close
// to a centroid, which is where the argmin decides.
//
// Determinism: integer atomics only, tree sums of fixed shape, a stable sort, so the same input
// gives the same bits run to run. They are not the CPU's bits: its sums run in chunk order
// and nvcc contracts the distance sums into FMAs differently from the host compiler, so
// centroids can differ in the last digits, and codes where two distances tie within a rounding.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <float.h>

#include <algorithm>
#include <cub/device/device_radix_sort.cuh>
#include <memory>
#include <utility>
#include <vector>

#include "cc/core/kmeans_internal.h"
#include "cc/core/kmeans_math.h"
#include "cc/core/kmeans_vector_fit.h"
#include "cc/kernels/gpu_util.h"
#include "cc/kernels/kmeans.h"

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

// Points per k-means++ chunk: one block's tree sum of their distances, and what the host copies
// to draw within a chunk.
constexpr int64_t kSeedChunkPoints = 4096;
// Centroid values the assignment caches in shared memory: the 48 KB a launch may ask for without
// opting in (AssignVectorsKernel has no static shared memory); beyond, it reads them through the
// caches.
constexpr int64_t kMaxCachedCentroidValues = int64_t{48 * 1024} / int64_t{sizeof(double)};

// Lloyd's sums run in about this many blocks whatever k (SumSlices blocks per cluster), so that
// a few clusters still fill the GPU.
constexpr int64_t kSumBlocks = 1024;

inline int64_t SumSlices(int64_t k) { return std::max<int64_t>(1, kSumBlocks / k); }

struct Min {
  __device__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct Max {
  __device__ double operator()(double a, double b) const { return fmax(a, b); }
};
struct Sum {
  __device__ double operator()(double a, double b) const { return a + b; }
};

// The block's `value`s combined in a fixed tree (the same bits every run); every thread of the
// block must call it, and gets the result.
template <typename Combine>
__device__ double BlockReduce(double value, double* shared, Combine combine) {
  __syncthreads();  // `shared` may still be read from a previous call
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      shared[threadIdx.x] = combine(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  return shared[0];
}

// Per-block minimum and maximum (exact, so independent of the order of the values).
template <typename T>
__global__ void MinMaxKernel(const T* values, int64_t count, double* block_min, double* block_max) {
  __shared__ double shared[kThreads];
  double low = DBL_MAX, high = -DBL_MAX;
  MATCOMP_GRID_STRIDE(i, count) {
    const double x = static_cast<double>(values[i]);
    low = fmin(low, x);
    high = fmax(high, x);
  }
  low = BlockReduce(low, shared, Min());
  high = BlockReduce(high, shared, Max());
  if (threadIdx.x == 0) block_min[blockIdx.x] = low, block_max[blockIdx.x] = high;
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

// codes[i] (and distances[i] when non-null) for the nearest of the k centroids; sets *changed
// when a code differs from previous[i] (when non-null). `cache`: centroids fit in shared memory.
template <typename T, typename Code>
__global__ void AssignVectorsKernel(const T* points, int64_t count, int64_t dim,
                                    const double* centroids, int64_t k, bool cache, Code* codes,
                                    double* distances, const Code* previous, int* changed) {
  extern __shared__ double cached[];
  if (cache) {
    for (int64_t j = threadIdx.x; j < k * dim; j += blockDim.x) cached[j] = centroids[j];
    __syncthreads();
  }
  const double* table = cache ? cached : centroids;
  MATCOMP_GRID_STRIDE(i, count) {
    double distance;
    const Code code =
        static_cast<Code>(matcomp::NearestCentroid(points + i * dim, table, k, dim, &distance));
    codes[i] = code;
    if (distances != nullptr) distances[i] = distance;
    if (previous != nullptr && previous[i] != code) *changed = 1;
  }
}

template <typename T, typename Code>
absl::Status LaunchAssign(const GPUDevice& device, const T* points, int64_t count, int64_t dim,
                          const double* centroids, int64_t k, Code* codes, double* distances,
                          const Code* previous, int* changed) {
  const bool cache = k * dim <= kMaxCachedCentroidValues;
  const size_t shared_bytes = cache ? k * dim * sizeof(double) : 0;
  AssignVectorsKernel<<<Blocks(count), kThreads, shared_bytes, device.stream()>>>(
      points, count, dim, centroids, k, cache, codes, distances, previous, changed);
  return gpu::LaunchStatus("AssignVectorsKernel");
}

// k-means++'s pass: distance[i] = min(distance[i], ‖point i − latest‖²) (set when `first`), and
// each block's kSeedChunkPoints-point chunk total.
template <typename T>
__global__ void SeedDistanceKernel(const T* points, int64_t count, int64_t dim,
                                   const double* latest, bool first, double* distance,
                                   double* chunk_totals) {
  __shared__ double shared[kThreads];
  const int64_t begin = blockIdx.x * kSeedChunkPoints;
  const int64_t end = begin + kSeedChunkPoints < count ? begin + kSeedChunkPoints : count;
  double total = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const double to_latest = matcomp::SquaredDistance(points + i * dim, latest, dim);
    const double kept = first || to_latest < distance[i] ? to_latest : distance[i];  // std::min
    distance[i] = kept;
    total += kept;
  }
  total = BlockReduce(total, shared, Sum());
  if (threadIdx.x == 0) chunk_totals[blockIdx.x] = total;
}

__global__ void IotaKernel(int64_t count, int64_t* values) {
  MATCOMP_GRID_STRIDE(i, count) { values[i] = i; }
}

// [bounds[2j], bounds[2j + 1]) = the positions of code j in the sorted codes (both 0 when j is
// absent: the caller zeroes them). One array, so that one copy brings both to the host.
__global__ void SegmentKernel(const int32_t* sorted, int64_t count, int64_t* bounds) {
  MATCOMP_GRID_STRIDE(p, count) {
    const int32_t code = sorted[p];
    if (p == 0 || sorted[p - 1] != code) bounds[2 * code] = p;
    if (p == count - 1 || sorted[p + 1] != code) bounds[2 * code + 1] = p + 1;
  }
}

// Block (j, g), g < slices: partials[j][g][d] sums value d of cluster j's points at sorted
// positions bounds[2j] + g·kThreads + t + r·slices·kThreads (r = 0, 1, ...; t the thread) in a
// fixed tree; order[] lists each cluster's points by ascending index (the sort is stable). The
// host adds a cluster's slices in order. The shape depends on k only.
template <typename T>
__global__ void ClusterSumKernel(const T* points, int64_t dim, const int64_t* order,
                                 const int64_t* bounds, double* partials) {
  __shared__ double shared[kThreads];
  const int64_t j = blockIdx.x, g = blockIdx.y, slices = gridDim.y;
  for (int64_t d = 0; d < dim; ++d) {
    double total = 0;
    for (int64_t m = bounds[2 * j] + g * kThreads + threadIdx.x; m < bounds[2 * j + 1];
         m += slices * kThreads) {
      total += static_cast<double>(points[order[m] * dim + d]);
    }
    total = BlockReduce(total, shared, Sum());
    if (threadIdx.x == 0) partials[(j * slices + g) * dim + d] = total;
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

// The device side of the vector fit (cc/core/kmeans_vector_fit.h has the contract): the points,
// distances and codes live on the device; the host sees chunk totals, one chunk's distances, the
// k sums and counts, and single rows. Each call waits for its copies, so the host buffers it
// hands over may change once it returns.
template <typename T>
class DeviceVectorBackend {
 public:
  DeviceVectorBackend(OpKernelContext* context, const T* points, int64_t count, int64_t dim,
                      int64_t num_clusters)
      : context_(context),
        device_(context->eigen_gpu_device()),
        points_(points),
        count_(count),
        dim_(dim),
        chunks_((count + kSeedChunkPoints - 1) / kSeedChunkPoints) {
    status_.Update(Allocate(num_clusters));
  }

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

  void CopyPoint(int64_t point, double* row) {
    std::vector<T> values;
    if (!ok() || !Check(gpu::ToHost(context_, points_ + point * dim_, dim_, &values))) return;
    std::copy(values.begin(), values.end(), row);
  }

  std::vector<double> SeedDistances(const double* latest) {
    std::vector<double> totals;
    if (!ok()) return totals;
    device_.memcpyHostToDevice(latest_, latest, dim_ * sizeof(double));
    SeedDistanceKernel<<<static_cast<unsigned>(chunks_), kThreads, 0, device_.stream()>>>(
        points_, count_, dim_, latest_, !seeded_, distance_, chunk_totals_);
    seeded_ = true;
    host_distance_.clear();
    if (Check(gpu::LaunchStatus("SeedDistanceKernel"))) {
      Check(gpu::ToHost(context_, chunk_totals_, chunks_, &totals));  // also waits for `latest`
    }
    return totals;
  }

  int64_t ChunkBegin(int64_t chunk) const { return chunk * kSeedChunkPoints; }

  internal::WeightSpan ChunkDistances(int64_t chunk) {
    if (!ok()) return {nullptr, 0};
    const int64_t begin = ChunkBegin(chunk);
    const int64_t size = std::min(kSeedChunkPoints, count_ - begin);
    Check(gpu::ToHost(context_, distance_ + begin, size, &host_chunk_));
    return {host_chunk_.data(), ok() ? size : 0};
  }

  int64_t TakeFarthest() {
    // Rare (a draw lost to rounding, an empty cluster): the distances are copied once, and
    // kept until they change.
    if (!ok()) return 0;
    if (host_distance_.empty() &&
        !Check(gpu::ToHost(context_, distance_, count_, &host_distance_))) {
      return 0;
    }
    const int64_t farthest = internal::TakeFarthestOf(&host_distance_);
    device_.memset(distance_ + farthest, 0, sizeof(double));  // all-zero bits: +0.0
    return farthest;
  }

  bool Assign(const std::vector<double>& centroids) {
    if (!ok()) return false;
    const int64_t k = static_cast<int64_t>(centroids.size()) / dim_;
    device_.memcpyHostToDevice(centroids_, centroids.data(), centroids.size() * sizeof(double));
    std::swap(codes_, previous_);
    device_.memset(changed_, 0, sizeof(int));
    host_distance_.clear();
    if (!Check(LaunchAssign<T, int32_t>(device_, points_, count_, dim_, centroids_, k, codes_,
                                        distance_, assigned_ ? previous_ : nullptr, changed_))) {
      return false;
    }
    std::vector<int> changed;
    if (!Check(gpu::ToHost(context_, changed_, 1, &changed))) return false;
    const bool first = !assigned_;
    assigned_ = true;
    return first || changed[0] != 0;
  }

  void ClusterSums(std::vector<double>* sums, std::vector<double>* counts) {
    if (!ok()) return;
    const int64_t k = static_cast<int64_t>(counts->size());
    size_t temp_bytes = sort_temp_bytes_;
    if (!Check(CudaStatus(cub::DeviceRadixSort::SortPairs(
            sort_temp_, temp_bytes, codes_, sorted_codes_, order_, sorted_order_, count_, 0,
            end_bit_, device_.stream())))) {
      return;
    }
    device_.memset(bounds_, 0, 2 * k * sizeof(int64_t));
    SegmentKernel<<<Blocks(count_), kThreads, 0, device_.stream()>>>(sorted_codes_, count_,
                                                                     bounds_);
    if (!Check(gpu::LaunchStatus("SegmentKernel"))) return;
    const int64_t slices = SumSlices(k);
    const dim3 grid(static_cast<unsigned>(k), static_cast<unsigned>(slices));
    ClusterSumKernel<<<grid, kThreads, 0, device_.stream()>>>(points_, dim_, sorted_order_, bounds_,
                                                              partials_);
    if (!Check(gpu::LaunchStatus("ClusterSumKernel"))) return;
    std::vector<int64_t> bounds;
    if (!Check(gpu::ToHost(context_, bounds_, 2 * k, &bounds)) ||
        !Check(gpu::ToHost(context_, partials_, k * slices * dim_, &host_partials_))) {
      return;
    }
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t d = 0; d < dim_; ++d) {
        double total = 0;
        for (int64_t g = 0; g < slices; ++g) total += host_partials_[(j * slices + g) * dim_ + d];
        (*sums)[j * dim_ + d] = total;
      }
    }
    for (int64_t j = 0; j < k; ++j)
      (*counts)[j] = static_cast<double>(bounds[2 * j + 1] - bounds[2 * j]);
  }

 private:
  static absl::Status CudaStatus(cudaError_t error) {
    if (error == cudaSuccess) return absl::OkStatus();
    return absl::InternalError(
        absl::StrCat("tf_matcomp: k-means on the GPU failed: ", cudaGetErrorString(error)));
  }

  bool Check(const absl::Status& status) {
    status_.Update(status);  // keeps the first error
    return status_.ok();
  }

  absl::Status Allocate(int64_t num_clusters) {
    const int64_t values = num_clusters * dim_;
    while ((int64_t{1} << end_bit_) < num_clusters) ++end_bit_;  // the codes' significant bits
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, count_, &distance_tensor_, &distance_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, count_, &codes_tensor_, &codes_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, count_, &previous_tensor_, &previous_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, count_, &sorted_codes_tensor_, &sorted_codes_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, count_, &order_tensor_, &order_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, count_, &sorted_order_tensor_, &sorted_order_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, dim_, &latest_tensor_, &latest_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, values, &centroids_tensor_, &centroids_));
    TF_RETURN_IF_ERROR(
        gpu::DeviceTemp(context_, values * SumSlices(num_clusters), &partials_tensor_, &partials_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, chunks_, &chunk_totals_tensor_, &chunk_totals_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, 2 * num_clusters, &bounds_tensor_, &bounds_));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, 1, &changed_tensor_, &changed_));
    TF_RETURN_IF_ERROR(CudaStatus(
        cub::DeviceRadixSort::SortPairs(nullptr, sort_temp_bytes_, codes_, sorted_codes_, order_,
                                        sorted_order_, count_, 0, end_bit_, device_.stream())));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context_, static_cast<int64_t>(sort_temp_bytes_),
                                       &sort_temp_tensor_, &sort_temp_));
    IotaKernel<<<Blocks(count_), kThreads, 0, device_.stream()>>>(count_, order_);
    return gpu::LaunchStatus("IotaKernel");
  }

  OpKernelContext* const context_;
  const GPUDevice& device_;
  const T* const points_;
  const int64_t count_, dim_, chunks_;
  absl::Status status_;
  bool seeded_ = false, assigned_ = false;
  std::vector<double> host_chunk_, host_distance_,
      host_partials_;  // host_distance_: see TakeFarthest
  int end_bit_ = 1;
  size_t sort_temp_bytes_ = 0;
  Tensor distance_tensor_, codes_tensor_, previous_tensor_, sorted_codes_tensor_, order_tensor_,
      sorted_order_tensor_, latest_tensor_, centroids_tensor_, partials_tensor_,
      chunk_totals_tensor_, bounds_tensor_, changed_tensor_, sort_temp_tensor_;
  double *distance_ = nullptr, *latest_ = nullptr, *centroids_ = nullptr, *partials_ = nullptr,
         *chunk_totals_ = nullptr;
  int32_t *codes_ = nullptr, *previous_ = nullptr, *sorted_codes_ = nullptr;
  int64_t *order_ = nullptr, *sorted_order_ = nullptr, *bounds_ = nullptr;
  int* changed_ = nullptr;
  uint8_t* sort_temp_ = nullptr;
};

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
    if (count > 0 && dim == 1) {
      TF_RETURN_IF_ERROR(FitScalar(context, points.data(), count, options, &centroids));
    } else if (count > 0) {
      DeviceVectorBackend<T> backend(context, points.data(), count, dim, options.num_clusters);
      centroids = internal::FitVectorsWith(backend, count, dim, options);
      TF_RETURN_IF_ERROR(backend.status());
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
      TF_RETURN_IF_ERROR(LaunchAssign<T, Code>(
          context->eigen_gpu_device(), points.data(), count, dim, device_centroids,
          static_cast<int64_t>(centroids.size()) / dim, codes.data(), nullptr, nullptr, nullptr));
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
