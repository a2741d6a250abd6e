// Adapts TF's intra-op CPU thread pool to the core's injected ParallelFor.
#ifndef TF_MATCOMP_KERNELS_TF_PARALLEL_H_
#define TF_MATCOMP_KERNELS_TF_PARALLEL_H_

#include "cc/core/parallel.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/util/work_sharder.h"

namespace tf_matcomp {

// Shards core work over the kernel's CPU worker threads (TF's intra-op pool).
inline matcomp::ParallelFor TfParallelFor(tensorflow::OpKernelContext* context) {
  const auto* workers = context->device()->tensorflow_cpu_worker_threads();
  return [workers](int64_t total, int64_t cost_per_unit, const matcomp::ShardWork& work) {
    if (total <= 0) return;
    tensorflow::Shard(workers->num_threads, workers->workers, total, cost_per_unit,
                      [&work](int64_t begin, int64_t end) { work(begin, end); });
  };
}

}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_TF_PARALLEL_H_
