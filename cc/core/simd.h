// Portable CPU vectors (GCC/Clang vector extensions) as wide as the ISA this file is compiled
// for (cc/core is compiled once per x86-64 level), with non-temporal stores where the ISA has
// them: for outputs too large to stay in cache, written once, whose lines are then not read
// from memory before they are overwritten.
#ifndef TF_MATCOMP_CORE_SIMD_H_
#define TF_MATCOMP_CORE_SIMD_H_

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace matcomp {
namespace simd {

#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
#else
inline constexpr int kVectorBytes = 16;
#endif

// An output of at least this many bytes is written with non-temporal stores: half of a
// typical server L3, so that it would not have stayed in cache for the op reading it next.
inline constexpr int64_t kStreamingStoreBytes = int64_t{16} << 20;

template <typename T>
struct VectorOf {
  typedef T type __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
using Vector = typename VectorOf<T>::type;

template <typename T>
constexpr int64_t Lanes() {
  return kVectorBytes / sizeof(T);
}

template <typename T>
inline Vector<T> Load(const T* p) {
  Vector<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
inline void Store(T* p, const Vector<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// A non-temporal store of v at p where the ISA has one for T and p is aligned to the vector;
// false (nothing stored) otherwise.
template <typename T>
inline bool StreamStore(T* p, const Vector<T>& v) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(v) != 0) return false;
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value) return _mm512_stream_ps(p, (__m512)v), true;
  if constexpr (std::is_same<T, double>::value) return _mm512_stream_pd(p, (__m512d)v), true;
#elif defined(__AVX__)
  if constexpr (std::is_same<T, float>::value) return _mm256_stream_ps(p, (__m256)v), true;
  if constexpr (std::is_same<T, double>::value) return _mm256_stream_pd(p, (__m256d)v), true;
#elif defined(__SSE2__)
  if constexpr (std::is_same<T, float>::value) return _mm_stream_ps(p, (__m128)v), true;
  if constexpr (std::is_same<T, double>::value) return _mm_stream_pd(p, (__m128d)v), true;
#endif
  return false;
}

// Stores v at p, non-temporally when kStream and StreamStore can.
template <typename T, bool kStream>
inline void StoreMaybeStreaming(T* p, const Vector<T>& v) {
  if (kStream && StreamStore(p, v)) return;
  Store(p, v);
}

// Makes this thread's non-temporal stores visible before anything it writes next (call it
// before the thread reports its work done).
inline void StreamFence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace simd
}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_SIMD_H_
