// The pybind11 module's ParallelFor: std::threads spawned per call, no pool kept between calls.
//
// Work is split into contiguous shards, one per thread; the core's algorithms are written so that
// their results do not depend on the shard layout, so any thread count gives the same bytes.
#ifndef TF_MATCOMP_PYTHON_THREAD_RUNNER_H_
#define TF_MATCOMP_PYTHON_THREAD_RUNNER_H_

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "cc/core/parallel.h"

namespace matcomp {
namespace python {

// Below this much estimated work (cycles) a shard is not worth a thread.
constexpr int64_t kMinCyclesPerShard = 200000;

// num_threads <= 0 means one per hardware thread.
inline ParallelFor ThreadRunner(int num_threads) {
  if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  return [num_threads](int64_t total, int64_t cost_per_unit, const ShardWork& work) {
    if (total <= 0) return;
    const int64_t by_cost = std::max<int64_t>(
        1, total * std::max<int64_t>(cost_per_unit, 1) / kMinCyclesPerShard);
    const int64_t shards = std::min<int64_t>({num_threads, total, by_cost});
    if (shards == 1) {
      work(0, total);
      return;
    }
    std::vector<std::thread> threads;
    threads.reserve(shards - 1);
    const int64_t step = (total + shards - 1) / shards;
    for (int64_t begin = step; begin < total; begin += step) {
      threads.emplace_back(work, begin, std::min(total, begin + step));
    }
    work(0, std::min(total, step));
    for (auto& thread : threads) thread.join();
  };
}

}  // namespace python
}  // namespace matcomp

#endif  // TF_MATCOMP_PYTHON_THREAD_RUNNER_H_
