// Launch configuration, launch checks and small host<->device copies shared by the .cu.cc files.
// Included only by CUDA sources (compiled by nvcc with EIGEN_USE_GPU).
#ifndef TF_MATCOMP_KERNELS_GPU_UTIL_H_
#define TF_MATCOMP_KERNELS_GPU_UTIL_H_

#if GOOGLE_CUDA

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/types.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tf_matcomp {
namespace gpu {

using GPUDevice = Eigen::GpuDevice;

constexpr int kThreads = 256;
// Grid-stride loops cover any size with at most this many blocks.
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

// for (int64_t i ...) over [0, count) in a grid-stride loop (any grid covers any count).
#define MATCOMP_GRID_STRIDE(i, count)                                                        \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (count); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

inline int Blocks(int64_t items) {
  const int64_t wanted = (items + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min(kMaxBlocks, wanted)));
}

// The error of the last launch on this thread, as a status naming the kernel.
inline absl::Status LaunchStatus(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("tf_matcomp: launching ", kernel, " failed: ", cudaGetErrorString(error)));
}

// A device temporary of `count` elements of T.
template <typename T>
absl::Status DeviceTemp(tensorflow::OpKernelContext* context, int64_t count,
                        tensorflow::Tensor* tensor, T** data) {
  TF_RETURN_IF_ERROR(context->allocate_temp(tensorflow::DataTypeToEnum<T>::value,
                                            tensorflow::TensorShape({count}), tensor));
  *data = tensor->flat<T>().data();
  return absl::OkStatus();
}

// A device copy of `values` (kept alive by `tensor`).
template <typename T>
absl::Status ToDevice(tensorflow::OpKernelContext* context, const std::vector<T>& values,
                      tensorflow::Tensor* tensor, T** data) {
  TF_RETURN_IF_ERROR(DeviceTemp(context, static_cast<int64_t>(values.size()), tensor, data));
  if (!values.empty()) {
    context->eigen_gpu_device().memcpyHostToDevice(*data, values.data(), values.size() * sizeof(T));
  }
  return absl::OkStatus();
}

// Waits for everything queued on the kernel's stream.
inline absl::Status Synchronize(tensorflow::OpKernelContext* context) {
  const cudaError_t error = cudaStreamSynchronize(context->eigen_gpu_device().stream());
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("tf_matcomp: waiting for the GPU failed: ", cudaGetErrorString(error)));
}

// Copies `count` values from the device and waits for them (and everything queued before).
template <typename T>
absl::Status ToHost(tensorflow::OpKernelContext* context, const T* data, int64_t count,
                    std::vector<T>* values) {
  values->resize(count);
  if (count > 0) {
    // cudaMemcpyAsync itself, not Eigen's wrapper: that one drops the error (its check is an
    // assert), and a failed copy would read as zeros.
    const cudaError_t error =
        cudaMemcpyAsync(values->data(), data, count * sizeof(T), cudaMemcpyDeviceToHost,
                        context->eigen_gpu_device().stream());
    if (error != cudaSuccess) {
      return absl::InternalError(
          absl::StrCat("tf_matcomp: copying from the GPU failed: ", cudaGetErrorString(error)));
    }
  }
  return Synchronize(context);
}

}  // namespace gpu
}  // namespace tf_matcomp

#endif  // GOOGLE_CUDA
#endif  // TF_MATCOMP_KERNELS_GPU_UTIL_H_
