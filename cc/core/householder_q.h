// The Q factor of a thin Householder QR: Q [m, n] with orthonormal columns, y = Q·R with R
// upper triangular, for y [m, n], m >= n, both row-major. Q is LAPACK's (geqrf then orgqr) and
// Eigen's HouseholderQR's: the same reflectors, so R's diagonal may be negative.
//
// Blocked for two or more threads, where TF's QR (Eigen's, single-threaded) leaves all but one
// core idle: panels of kHouseholderPanel columns are factored one after another, each panel's
// block reflector I − V·T·Vᵀ is applied to the columns right of it, and the reflectors are then
// applied backwards to the identity's first n columns to form Q; both applications run over
// column chunks of fixed width in parallel. The chunks are fixed by the shapes, so the results
// are bit-identical whatever the thread count. y is first scaled by a power of two (exact) so
// that no squared norm overflows or underflows: huge and denormal inputs give Q too. NaN or ±Inf
// in y give NaN in Q where they reach. Throws std::bad_alloc when its scratch (two m × n working
// copies) cannot be allocated.
#ifndef TF_MATCOMP_CORE_HOUSEHOLDER_Q_H_
#define TF_MATCOMP_CORE_HOUSEHOLDER_Q_H_

#include <cstdint>

#include "cc/core/parallel.h"

namespace matcomp {

template <typename T>
void HouseholderQ(const T* y, int64_t rows, int64_t cols, const ParallelFor& parallel_for, T* q);

}  // namespace matcomp

#endif  // TF_MATCOMP_CORE_HOUSEHOLDER_Q_H_
