// The core throws std::bad_alloc when its scratch cannot be had: kernels report it as an error
// of the op (ResourceExhaustedError), never a crash.
#ifndef TF_MATCOMP_KERNELS_OUT_OF_MEMORY_H_
#define TF_MATCOMP_KERNELS_OUT_OF_MEMORY_H_

#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tf_matcomp {

// compute(), with a std::bad_alloc it throws turned into the op's ResourceExhaustedError.
template <typename Compute>
absl::Status ReportingOutOfMemory(const char* op, Compute&& compute) {
  try {
    compute();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(op, ": out of memory allocating the kernel's scratch buffers"));
  }
  return absl::OkStatus();
}

}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_OUT_OF_MEMORY_H_
