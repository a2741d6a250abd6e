// Argument checks for the pybind11 module: NumPy arrays in, ValueError (naming the argument and
// the rule) out, and a C-contiguous view without copying whenever the layout allows.
#ifndef TF_MATCOMP_PYTHON_ARRAY_CHECKS_H_
#define TF_MATCOMP_PYTHON_ARRAY_CHECKS_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace matcomp {
namespace python {

namespace py = pybind11;

inline void RequireNdim(const py::array& array, int ndim, const char* name) {
  if (array.ndim() != ndim) {
    throw py::value_error(std::string("`") + name + "` must have " + std::to_string(ndim) +
                          " dimensions, got " + std::to_string(array.ndim()));
  }
}

// A row-major (C-contiguous) array of T: the input itself when it already is one, else a copy.
template <typename T>
py::array_t<T, py::array::c_style> AsContiguous(const py::array& array) {
  return py::array_t<T, py::array::c_style>::ensure(array);
}

// Equivalence, not identity: a dtype object carrying metadata still counts as float32.
template <typename T>
bool HasDtype(const py::array& array) {
  return py::isinstance<py::array_t<T>>(array);
}

// Seeds arrive as Python ints; negative ones are a ValueError rather than pybind11's TypeError.
inline uint64_t CheckedSeed(int64_t seed) {
  if (seed < 0) throw py::value_error("`seed` must be >= 0, got " + std::to_string(seed));
  return static_cast<uint64_t>(seed);
}

[[noreturn]] inline void RejectDtype(const py::array& array, const char* name,
                                     const char* allowed) {
  throw py::value_error(std::string("`") + name + "` must have dtype " + allowed + ", got " +
                        std::string(py::str(array.dtype())));
}

}  // namespace python
}  // namespace matcomp

#endif  // TF_MATCOMP_PYTHON_ARRAY_CHECKS_H_
