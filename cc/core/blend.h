// The elementwise half of LowRankBlend: out = alpha * a + (1 - alpha) * product, where
// `product` holds B·C. Kept in the core so that every caller (the Eigen output kernel that
// fuses it into the GEMM, and any future non-GEMM path) shares one definition.
#ifndef TF_MATCOMP_CORE_BLEND_H_
#define TF_MATCOMP_CORE_BLEND_H_

#include <cstdint>
#include <type_traits>

namespace matcomp {

// Half and bfloat16 blend (and scale GEMMs) in float, so that alpha close to 0 or 1 keeps its
// precision; float and double in themselves.
template <typename T>
using BlendAccumulator =
    typename std::conditional<std::is_floating_point<T>::value, T, float>::type;

// alpha · a + beta · product, beta = 1 − alpha: on scalars, or on vectors of them (the
// register tiles of blend_small_inner.h).
template <typename V, typename Acc>
inline V Blend(Acc alpha, Acc beta, const V& a, const V& product) {
  return alpha * a + beta * product;
}

// `out` may be `product` itself (then the blend is in place).
template <typename T, typename Acc = T>
inline void BlendInto(const T* a, const T* product, T* out, int64_t count, Acc alpha) {
  const Acc beta = Acc(1) - alpha;
  for (int64_t i = 0; i < count; ++i) {
    out[i] =
        static_cast<T>(Blend(alpha, beta, static_cast<Acc>(a[i]), static_cast<Acc>(product[i])));
  }
}

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_BLEND_H_
