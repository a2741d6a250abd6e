// The pybind11 module's ParallelFor: std::threads spawned per call, no pool kept between calls.
//
// Work is split into contiguous shards, one per thread; the core's algorithms are written so that
// their results do not depend on the shard layout, so any thread count gives the same bytes.
#ifndef TF_MATCOMP_PYTHON_THREAD_RUNNER_H_
#define TF_MATCOMP_PYTHON_THREAD_RUNNER_H_

#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__SSE__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include "cc/core/parallel.h"

namespace matcomp {
namespace python {

// Denormals flushed to zero (inputs and results) while alive, as TensorFlow runs its kernels,
// so that _core gives the kernels' bytes on denormal inputs too. Restores the previous mode.
class ScopedFlushDenormal {
 public:
#if defined(__SSE__)
  ScopedFlushDenormal() : saved_(_mm_getcsr()) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  }
  ~ScopedFlushDenormal() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#elif defined(__aarch64__)
  ScopedFlushDenormal() {
    asm volatile("mrs %0, fpcr" : "=r"(saved_));
    const uint64_t flush_to_zero = saved_ | (uint64_t{1} << 24);  // FPCR.FZ
    asm volatile("msr fpcr, %0" : : "r"(flush_to_zero));
  }
  ~ScopedFlushDenormal() { asm volatile("msr fpcr, %0" : : "r"(saved_)); }

 private:
  uint64_t saved_;
#endif
  ScopedFlushDenormal(const ScopedFlushDenormal&) = delete;
  ScopedFlushDenormal& operator=(const ScopedFlushDenormal&) = delete;
};

// Where a binding computes: the GIL released and denormals flushed as in TF's kernels.
struct NativeSection {
  pybind11::gil_scoped_release release;
  ScopedFlushDenormal flush;
};

// Below this much estimated work (cycles) a shard is not worth a thread.
constexpr int64_t kMinCyclesPerShard = 200000;

// num_threads <= 0 means one per hardware thread.
inline ParallelFor ThreadRunner(int num_threads) {
  if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  return [num_threads](int64_t total, int64_t cost_per_unit, const ShardWork& work) {
    if (total <= 0) return;
    const int64_t by_cost =
        std::max<int64_t>(1, total * std::max<int64_t>(cost_per_unit, 1) / kMinCyclesPerShard);
    const int64_t shards = std::min<int64_t>({num_threads, total, by_cost});
    if (shards == 1) {
      work(0, total);
      return;
    }
    std::vector<std::thread> threads;
    threads.reserve(shards - 1);
    const int64_t step = (total + shards - 1) / shards;
    int64_t begin = step;
    for (; begin < total; begin += step) {
      try {
        threads.emplace_back(
            [&work](int64_t first, int64_t last) {
              ScopedFlushDenormal flush;
              work(first, last);
            },
            begin, std::min(total, begin + step));
      } catch (const std::system_error&) {
        break;  // no more threads to be had: the calling thread does the rest
      }
    }
    work(0, std::min(total, step));
    if (begin < total) work(begin, total);
    for (auto& thread : threads) thread.join();
  };
}

}  // namespace python
}  // namespace matcomp

#endif  // TF_MATCOMP_PYTHON_THREAD_RUNNER_H_
