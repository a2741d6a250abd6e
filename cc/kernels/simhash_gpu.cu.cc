// GPU functors of Matcomp>SimhashCompress, SimhashDecompress and SimhashProjection.
//
// R is generated on the device by the counter-based generator of cc/core/counter_rng.h (the
// same MATCOMP_HOST_DEVICE code as the CPU: integer arithmetic and one multiply, so R is
// bit-identical to the CPU's). The products are GEMMs through TF's stream-executor BLAS
// (gpu_blas.h): P = Rᵀ·A, then ‖R S_j‖² from G = Rᵀ·R and G·S when SimhashThroughGram says
// that is cheaper, else from R·S. The signs are packed by the shared PackSigns. Column sums run
// in double over fixed row chunks merged in chunk order, so a result depends only on the input
// and the shapes (no atomics in any sum). float GEMMs follow TF's TensorFloat-32 setting, so
// signs of entries of Rᵀa within TF32 rounding of zero and the scales' last digits can differ
// from the CPU kernel's.
//
// The structured projection ("hadamard", cc/core/hadamard.h) needs no GEMM and no R: per block of
// bits, a signed fold of A's rows (each output summed in row order by one thread), log2(F)
// butterfly passes of the shared HadamardButterfly, and for R·X the transform followed by a
// signed unfold; the additions run in another order than the CPU's, so the same caveat applies.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <math.h>

#include "cc/core/counter_rng.h"
#include "cc/core/hadamard.h"
#include "cc/core/simhash_math.h"
#include "cc/kernels/gpu_blas.h"
#include "cc/kernels/gpu_util.h"
#include "cc/kernels/simhash.h"

namespace tf_matcomp {
namespace functor {
namespace {

using gpu::Blocks;
using gpu::GPUDevice;
using gpu::kThreads;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TTypes;

// Rows per chunk of the column sums: a function of the row count only.
constexpr int64_t kMaxColumnChunks = 64;
constexpr int64_t kMinChunkRows = 64;

template <typename T>
__global__ void FillProjectionKernel(uint64_t key, matcomp::ProjectionKind kind, int64_t rows,
                                     int64_t num_bits, T* out) {
  MATCOMP_GRID_STRIDE(i, rows * num_bits) {
    const int64_t row = i / num_bits, col = i % num_bits;
    out[i] = kind == matcomp::ProjectionKind::kGaussian
                 ? matcomp::ProjectionEntry<T>(key, row, col)
                 : matcomp::HadamardEntry<T>(key, rows, row, col);
  }
}

// fold[r, j] = Σ_{i ≡ r (mod length), i < rows} σ_q(i) · a[i, j], in row order, for r < length.
template <typename T>
__global__ void SignedFoldKernel(const T* a, int64_t rows, int64_t cols, uint64_t key, int64_t q,
                                 int64_t length, T* fold) {
  MATCOMP_GRID_STRIDE(index, length * cols) {
    const int64_t r = index / cols, j = index % cols;
    T sum = T(0);
    for (int64_t i = r; i < rows; i += length) {
      const T value = a[i * cols + j];
      sum += matcomp::HadamardRowNegative(key, i, q) ? -value : value;
    }
    fold[index] = sum;
  }
}

// One pass (`half`) of H_length over the rows of data [length, cols].
template <typename T>
__global__ void ButterflyKernel(T* data, int64_t length, int64_t cols, int64_t half) {
  MATCOMP_GRID_STRIDE(index, (length / 2) * cols) {
    const int64_t pair = index / cols, j = index % cols;
    const int64_t first = (pair / half) * 2 * half + pair % half;
    matcomp::HadamardButterfly(data + first * cols + j, data + (first + half) * cols + j, 1);
  }
}

// out[i, j] (=, or += when `add`) σ_q(i) · transformed[i mod length, j].
template <typename T>
__global__ void SignedUnfoldKernel(const T* transformed, int64_t rows, int64_t cols, uint64_t key,
                                   int64_t q, int64_t length, bool add, T* out) {
  MATCOMP_GRID_STRIDE(index, rows * cols) {
    const int64_t i = index / cols, j = index % cols;
    const T value = transformed[(i & (length - 1)) * cols + j];
    const T signed_value = matcomp::HadamardRowNegative(key, i, q) ? -value : value;
    out[index] = add ? out[index] + signed_value : signed_value;
  }
}

// signs[b, byte] from P [k, cols]; raises *nonfinite when an entry of P is not finite.
template <typename T>
__global__ void PackSignsKernel(const T* p, int64_t num_bits, int64_t cols, int64_t packed,
                                uint8_t* signs, int* nonfinite) {
  MATCOMP_GRID_STRIDE(i, num_bits * packed) {
    const int64_t b = i / packed, byte = i % packed;
    const T* values = p + b * cols + byte * 8;
    const int64_t count = cols - byte * 8 < 8 ? cols - byte * 8 : 8;
    for (int64_t bit = 0; bit < count; ++bit) {
      if (!isfinite(static_cast<double>(values[bit]))) *nonfinite = 1;
    }
    signs[i] = matcomp::PackSigns(values, count);
  }
}

__global__ void AllPositiveKernel(int64_t num_bits, int64_t cols, int64_t packed, uint8_t* signs) {
  MATCOMP_GRID_STRIDE(i, num_bits * packed) {
    signs[i] = matcomp::AllPositiveByte(i % packed, cols);
  }
}

template <typename T>
__global__ void ToSignsKernel(int64_t count, T* p) {
  MATCOMP_GRID_STRIDE(i, count) { p[i] = p[i] >= T(0) ? T(1) : T(-1); }
}

// S · diag(scales) [k, cols] from the packed signs.
template <typename T>
__global__ void ScaledSignsKernel(const uint8_t* signs, const T* scales, int64_t num_bits,
                                  int64_t cols, int64_t packed, T* out) {
  MATCOMP_GRID_STRIDE(i, num_bits * cols) {
    const int64_t b = i / cols, j = i % cols;
    out[i] = matcomp::SignIsPositive(signs + b * packed, j) ? scales[j] : -scales[j];
  }
}

template <typename T>
struct AbsTerm {
  const T* x;
  int64_t cols;
  __device__ double operator()(int64_t i, int64_t j) const {
    return fabs(static_cast<double>(x[i * cols + j]));
  }
};

template <typename T>
struct ProductTerm {
  const T* x;
  const T* y;
  int64_t cols;
  __device__ double operator()(int64_t i, int64_t j) const {
    return static_cast<double>(x[i * cols + j]) * static_cast<double>(y[i * cols + j]);
  }
};

// partial[chunk, j] = Σ term(i, j) over the rows of the chunk (blockIdx.y), in row order.
template <typename Term>
__global__ void ColumnPartialsKernel(Term term, int64_t rows, int64_t cols, int64_t chunk_rows,
                                     double* partial) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  const int64_t begin = blockIdx.y * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  double sum = 0;
  for (int64_t i = begin; i < end; ++i) sum += term(i, j);
  partial[blockIdx.y * cols + j] = sum;
}

__global__ void SumChunksKernel(const double* partial, int64_t chunks, int64_t cols, double* out) {
  MATCOMP_GRID_STRIDE(j, cols) {
    double sum = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * cols + j];
    out[j] = sum;
  }
}

template <typename T>
__global__ void ScalesKernel(matcomp::SimhashScale scale, const double* numerators,
                             const double* squared_norms, const double* column_squared,
                             int64_t cols, T* scales, int* nonfinite) {
  MATCOMP_GRID_STRIDE(j, cols) {
    const T d = static_cast<T>(matcomp::SimhashColumnScale(
        scale, numerators[j], squared_norms[j], column_squared ? column_squared[j] : 0.0));
    scales[j] = d;
    // |a_j| or the numerator can overflow even when Rᵀ a is finite: never return Inf.
    if (!isfinite(static_cast<double>(d))) *nonfinite = 1;
  }
}

// out[j] = Σ_i term(i, j) over rows, for cols columns (deterministic, see the file comment).
template <typename Term>
absl::Status ColumnSums(OpKernelContext* context, Term term, int64_t rows, int64_t cols,
                        double* out) {
  const int64_t chunks = std::max<int64_t>(1, std::min(kMaxColumnChunks, rows / kMinChunkRows));
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  Tensor partial_tensor;
  double* partial = nullptr;
  TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, chunks * cols, &partial_tensor, &partial));
  const cudaStream_t stream = context->eigen_gpu_device().stream();
  const dim3 grid(static_cast<unsigned>((cols + kThreads - 1) / kThreads),
                  static_cast<unsigned>(chunks));
  ColumnPartialsKernel<<<grid, kThreads, 0, stream>>>(term, rows, cols, chunk_rows, partial);
  TF_RETURN_IF_ERROR(gpu::LaunchStatus("ColumnPartialsKernel"));
  SumChunksKernel<<<Blocks(cols), kThreads, 0, stream>>>(partial, chunks, cols, out);
  return gpu::LaunchStatus("SumChunksKernel");
}

// R [rows, num_bits] for `seed` into `projection` (device memory).
template <typename T>
absl::Status FillProjection(OpKernelContext* context, uint64_t seed, matcomp::ProjectionKind kind,
                            int64_t rows, int64_t num_bits, T* projection) {
  FillProjectionKernel<<<Blocks(rows * num_bits), kThreads, 0,
                         context->eigen_gpu_device().stream()>>>(matcomp::ProjectionKey(seed), kind,
                                                                 rows, num_bits, projection);
  return gpu::LaunchStatus("FillProjectionKernel");
}

// H_length applied in place to the rows of data [length, cols] (length a power of two).
template <typename T>
absl::Status Transform(OpKernelContext* context, T* data, int64_t length, int64_t cols) {
  const cudaStream_t stream = context->eigen_gpu_device().stream();
  for (int64_t half = 1; half < length; half <<= 1) {
    ButterflyKernel<<<Blocks((length / 2) * cols), kThreads, 0, stream>>>(data, length, cols, half);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("ButterflyKernel"));
  }
  return absl::OkStatus();
}

// out [rows, cols] = Σ_q R_q · X_q for X [num_bits, cols] (block q: rows q·L.. of X), R the
// structured projection; `fold` holds [HadamardFold(min(num_bits, L)), cols].
template <typename T>
absl::Status HadamardTimes(OpKernelContext* context, const T* x, int64_t rows, int64_t cols,
                           int64_t num_bits, uint64_t key, T* fold, T* out) {
  const GPUDevice& device = context->eigen_gpu_device();
  const int64_t block = matcomp::HadamardBlock(rows);
  for (int64_t q = 0; q < matcomp::HadamardBlocks(rows, num_bits); ++q) {
    const int64_t bits = matcomp::HadamardBitsInBlock(rows, num_bits, q);
    const int64_t length = matcomp::HadamardFold(bits);
    device.memcpy(fold, x + q * block * cols, bits * cols * sizeof(T));
    device.memset(fold + bits * cols, 0, (length - bits) * cols * sizeof(T));
    TF_RETURN_IF_ERROR(Transform(context, fold, length, cols));
    SignedUnfoldKernel<<<Blocks(rows * cols), kThreads, 0, device.stream()>>>(
        fold, rows, cols, key, q, length, q > 0, out);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("SignedUnfoldKernel"));
  }
  return absl::OkStatus();
}

// P [num_bits, cols] = Rᵀ · A for the structured projection, block by block.
template <typename T>
absl::Status HadamardTransposeTimes(OpKernelContext* context, const T* a, int64_t rows,
                                    int64_t cols, int64_t num_bits, uint64_t key, T* fold, T* p) {
  const GPUDevice& device = context->eigen_gpu_device();
  const int64_t block = matcomp::HadamardBlock(rows);
  for (int64_t q = 0; q < matcomp::HadamardBlocks(rows, num_bits); ++q) {
    const int64_t bits = matcomp::HadamardBitsInBlock(rows, num_bits, q);
    const int64_t length = matcomp::HadamardFold(bits);
    SignedFoldKernel<<<Blocks(length * cols), kThreads, 0, device.stream()>>>(a, rows, cols, key, q,
                                                                              length, fold);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("SignedFoldKernel"));
    TF_RETURN_IF_ERROR(Transform(context, fold, length, cols));
    device.memcpy(p + q * block * cols, fold, bits * cols * sizeof(T));
  }
  return absl::OkStatus();
}

// Rows of the structured projection's fold buffer for `rows` and `num_bits`.
inline int64_t HadamardFoldRows(int64_t rows, int64_t num_bits) {
  return matcomp::HadamardFold(std::min(num_bits, matcomp::HadamardBlock(rows)));
}

}  // namespace

template <typename T>
struct SimhashProjection<GPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, uint64_t seed, matcomp::ProjectionKind kind,
                          typename TTypes<T>::Matrix projection) {
    if (projection.size() == 0) return absl::OkStatus();
    return FillProjection(context, seed, kind, projection.dimension(0), projection.dimension(1),
                          projection.data());
  }
};

template <typename T>
struct SimhashCompress<GPUDevice, T> {
  absl::Status operator()(OpKernelContext* context, typename TTypes<T>::ConstMatrix a,
                          uint64_t seed, matcomp::ProjectionKind projection,
                          matcomp::SimhashScale scale,
                          typename TTypes<tensorflow::uint8>::Matrix signs,
                          typename TTypes<T>::Vec scales, bool* finite) {
    const GPUDevice& device = context->eigen_gpu_device();
    const cudaStream_t stream = device.stream();
    const int64_t rows = a.dimension(0), cols = a.dimension(1), k = signs.dimension(0);
    const int64_t packed = matcomp::PackedWidth(cols);
    *finite = true;
    if (cols == 0) return absl::OkStatus();
    if (rows == 0) {  // R S = 0: every sign is sign(0) = +1 and every scale 0
      AllPositiveKernel<<<Blocks(k * packed), kThreads, 0, stream>>>(k, cols, packed, signs.data());
      device.memset(scales.data(), 0, cols * sizeof(T));
      return gpu::LaunchStatus("AllPositiveKernel");
    }
    const bool hadamard = projection == matcomp::ProjectionKind::kHadamard;
    const uint64_t key = matcomp::ProjectionKey(seed);
    Tensor r_tensor, p_tensor, product_tensor, gram_tensor, sums_tensor, flag_tensor;
    T *r = nullptr, *p = nullptr, *product = nullptr, *gram = nullptr;
    double* sums = nullptr;  // numerators, squared norms, ‖a_j‖², cols each
    int* nonfinite = nullptr;
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, k * cols, &p_tensor, &p));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, 3 * cols, &sums_tensor, &sums));
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, 1, &flag_tensor, &nonfinite));
    device.memset(nonfinite, 0, sizeof(int));
    // The structured projection's fold buffer, or the Gaussian R [rows, k].
    const int64_t r_size = hadamard ? HadamardFoldRows(rows, k) * cols : rows * k;
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, r_size, &r_tensor, &r));
    if (hadamard) {
      TF_RETURN_IF_ERROR(HadamardTransposeTimes(context, a.data(), rows, cols, k, key, r, p));
    } else {
      TF_RETURN_IF_ERROR(FillProjection(context, seed, projection, rows, k, r));
      // P [k, cols] = Rᵀ [k, rows] · A [rows, cols]
      TF_RETURN_IF_ERROR(GpuGemm<T>(context, true, false, k, cols, rows, T(1), r, k, a.data(), cols,
                                    T(0), p, cols));
    }
    PackSignsKernel<<<Blocks(k * packed), kThreads, 0, stream>>>(p, k, cols, packed, signs.data(),
                                                                 nonfinite);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("PackSignsKernel"));
    TF_RETURN_IF_ERROR(ColumnSums(context, AbsTerm<T>{p, cols}, k, cols, sums));
    ToSignsKernel<<<Blocks(k * cols), kThreads, 0, stream>>>(k * cols, p);  // P becomes S
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("ToSignsKernel"));
    double* squared_norms = sums + cols;
    if (!hadamard && matcomp::SimhashThroughGram(rows, cols, k)) {  // ‖R S_j‖² = S_jᵀ (G S)_j
      TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, k * k, &gram_tensor, &gram));
      TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, k * cols, &product_tensor, &product));
      TF_RETURN_IF_ERROR(
          GpuGemm<T>(context, true, false, k, k, rows, T(1), r, k, r, k, T(0), gram, k));
      TF_RETURN_IF_ERROR(GpuGemm<T>(context, false, false, k, cols, k, T(1), gram, k, p, cols, T(0),
                                    product, cols));
      TF_RETURN_IF_ERROR(
          ColumnSums(context, ProductTerm<T>{p, product, cols}, k, cols, squared_norms));
    } else {  // ‖R S_j‖² from R S [rows, cols]
      TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, rows * cols, &product_tensor, &product));
      if (hadamard) {
        TF_RETURN_IF_ERROR(HadamardTimes(context, p, rows, cols, k, key, r, product));
      } else {
        TF_RETURN_IF_ERROR(GpuGemm<T>(context, false, false, rows, cols, k, T(1), r, k, p, cols,
                                      T(0), product, cols));
      }
      TF_RETURN_IF_ERROR(
          ColumnSums(context, ProductTerm<T>{product, product, cols}, rows, cols, squared_norms));
    }
    double* column_squared = nullptr;
    if (scale == matcomp::SimhashScale::kNorm) {
      column_squared = sums + 2 * cols;
      TF_RETURN_IF_ERROR(ColumnSums(context, ProductTerm<T>{a.data(), a.data(), cols}, rows, cols,
                                    column_squared));
    }
    ScalesKernel<<<Blocks(cols), kThreads, 0, stream>>>(scale, sums, squared_norms, column_squared,
                                                        cols, scales.data(), nonfinite);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("ScalesKernel"));
    std::vector<int> flag;
    TF_RETURN_IF_ERROR(gpu::ToHost(context, nonfinite, 1, &flag));
    *finite = flag[0] == 0;
    return absl::OkStatus();
  }
};

template <typename T>
struct SimhashDecompress<GPUDevice, T> {
  absl::Status operator()(OpKernelContext* context,
                          typename TTypes<tensorflow::uint8>::ConstMatrix signs,
                          typename TTypes<T>::ConstVec scales, uint64_t seed,
                          matcomp::ProjectionKind projection, typename TTypes<T>::Matrix out) {
    const int64_t rows = out.dimension(0), cols = out.dimension(1), k = signs.dimension(0);
    if (rows == 0 || cols == 0) return absl::OkStatus();
    const bool hadamard = projection == matcomp::ProjectionKind::kHadamard;
    Tensor r_tensor, scaled_tensor;
    T *r = nullptr, *scaled = nullptr;
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, k * cols, &scaled_tensor, &scaled));
    ScaledSignsKernel<<<Blocks(k * cols), kThreads, 0, context->eigen_gpu_device().stream()>>>(
        signs.data(), scales.data(), k, cols, matcomp::PackedWidth(cols), scaled);
    TF_RETURN_IF_ERROR(gpu::LaunchStatus("ScaledSignsKernel"));
    if (hadamard) {  // out = R · (S · diag(D)) by transforms; the fold buffer in place of R
      TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, HadamardFoldRows(rows, k) * cols, &r_tensor, &r));
      return HadamardTimes(context, static_cast<const T*>(scaled), rows, cols, k,
                           matcomp::ProjectionKey(seed), r, out.data());
    }
    TF_RETURN_IF_ERROR(gpu::DeviceTemp(context, rows * k, &r_tensor, &r));
    TF_RETURN_IF_ERROR(FillProjection(context, seed, projection, rows, k, r));
    // out [rows, cols] = R [rows, k] · (S · diag(D)) [k, cols]
    return GpuGemm<T>(context, false, false, rows, cols, k, T(1), r, k, scaled, cols, T(0),
                      out.data(), cols);
  }
};

#define MATCOMP_INSTANTIATE_GPU(T)                 \
  template struct SimhashCompress<GPUDevice, T>;   \
  template struct SimhashDecompress<GPUDevice, T>; \
  template struct SimhashProjection<GPUDevice, T>;
MATCOMP_INSTANTIATE_GPU(float)
MATCOMP_INSTANTIATE_GPU(double)
#undef MATCOMP_INSTANTIATE_GPU

}  // namespace functor
}  // namespace tf_matcomp

#endif  // GOOGLE_CUDA
