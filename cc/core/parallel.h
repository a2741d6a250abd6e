// Parallelism injected into the core math: the core never owns threads.
//
// TF kernels pass TF's intra-op thread pool (see cc/kernels/tf_parallel.h); the pybind11 module
// passes a std::thread based runner (see cc/python/thread_runner.h). Work is always split so that
// results do not depend on how many threads run it.
#ifndef TF_MATCOMP_CORE_PARALLEL_H_
#define TF_MATCOMP_CORE_PARALLEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <new>

namespace matcomp {

// Calls work(begin, end) on disjoint shards covering [0, total). cost_per_unit is a rough cycle
// count per unit of work that lets the runner choose shard sizes.
using ShardWork = std::function<void(int64_t begin, int64_t end)>;
using ParallelFor =
    std::function<void(int64_t total, int64_t cost_per_unit, const ShardWork& work)>;

// Runs everything on the calling thread.
inline ParallelFor SerialFor() {
  return [](int64_t total, int64_t, const ShardWork& work) {
    if (total > 0) work(0, total);
  };
}

// parallel_for(total, cost_per_unit, work) for work that allocates: a std::bad_alloc thrown in a
// shard (it must not escape a worker thread: that would terminate the process) is caught there,
// the remaining shards skip their work, and it is rethrown on the calling thread once all shards
// have returned, so the caller can report it (ResourceExhaustedError, MemoryError).
inline void ParallelForOrThrowBadAlloc(const ParallelFor& parallel_for, int64_t total,
                                       int64_t cost_per_unit, const ShardWork& work) {
  std::atomic<bool> out_of_memory{false};
  parallel_for(total, cost_per_unit, [&](int64_t begin, int64_t end) {
    if (out_of_memory.load(std::memory_order_relaxed)) return;
    try {
      work(begin, end);
    } catch (const std::bad_alloc&) {
      out_of_memory.store(true, std::memory_order_relaxed);
    }
  });
  if (out_of_memory.load()) throw std::bad_alloc();
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_PARALLEL_H_
