// The Gaussian projection's Gram matrix G = Rᵀ R, kept between the calls of one SimhashCompress
// CPU kernel. G depends on (seed, rows, num_bits) only, and the seed and num_bits are the
// kernel's attributes: a kernel that compresses the same weight at every update computes G
// (about a tenth of a compression's multiply-adds at 1024 bits) once. One row count is kept at
// a time, up to kMaxCachedGramElements; the results are the same bits as without the cache.
#ifndef TF_MATCOMP_KERNELS_SIMHASH_GRAM_CACHE_H_
#define TF_MATCOMP_KERNELS_SIMHASH_GRAM_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "cc/core/constants.h"
#include "cc/core/parallel.h"
#include "cc/core/simhash.h"
#include "tensorflow/core/platform/mutex.h"
#include "tensorflow/core/platform/thread_annotations.h"

namespace tf_matcomp {

template <typename T>
class GaussianGramCache {
 public:
  // G for (seed, rows, num_bits) (matcomp::GaussianGram), computed unless kept; null when it
  // has more than kMaxCachedGramElements entries (SimhashCompress then forms its own). Safe
  // under concurrent calls: G is computed outside the lock and shared read-only.
  std::shared_ptr<const std::vector<T>> Get(uint64_t seed, int64_t rows, int64_t num_bits,
                                            const matcomp::ParallelFor& parallel_for) {
    if (num_bits * num_bits > matcomp::kMaxCachedGramElements) return nullptr;
    {
      tensorflow::mutex_lock lock(mutex_);
      if (gram_ != nullptr && seed_ == seed && rows_ == rows && num_bits_ == num_bits) {
        return gram_;
      }
    }
    auto gram = std::make_shared<std::vector<T>>(num_bits * num_bits);
    matcomp::GaussianGram(seed, rows, num_bits, parallel_for, gram->data());
    tensorflow::mutex_lock lock(mutex_);
    seed_ = seed;
    rows_ = rows;
    num_bits_ = num_bits;
    gram_ = gram;
    return gram_;
  }

 private:
  tensorflow::mutex mutex_;
  std::shared_ptr<const std::vector<T>> gram_ TF_GUARDED_BY(mutex_);
  uint64_t seed_ TF_GUARDED_BY(mutex_) = 0;
  int64_t rows_ TF_GUARDED_BY(mutex_) = 0;
  int64_t num_bits_ TF_GUARDED_BY(mutex_) = 0;
};

}  // namespace tf_matcomp

#endif  // TF_MATCOMP_KERNELS_SIMHASH_GRAM_CACHE_H_
