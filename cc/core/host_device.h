// MATCOMP_HOST_DEVICE marks the device-neutral math that CPU kernels, GPU kernels and the pybind11
// module share: `__host__ __device__` under nvcc, nothing under a plain C++ compiler, so one
// definition serves every build and the host tests exercise the code the GPU runs.
#ifndef TF_MATCOMP_CORE_HOST_DEVICE_H_
#define TF_MATCOMP_CORE_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define MATCOMP_HOST_DEVICE __host__ __device__
#else
#define MATCOMP_HOST_DEVICE
#endif

#endif  // TF_MATCOMP_CORE_HOST_DEVICE_H_
