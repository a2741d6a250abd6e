// Argument checks for the pybind11 module: NumPy arrays in, ValueError (naming the argument and
// the rule) out, and a C-contiguous view without copying whenever the layout allows.
#ifndef TF_MATCOMP_PYTHON_ARRAY_CHECKS_H_
#define TF_MATCOMP_PYTHON_ARRAY_CHECKS_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "cc/core/constants.h"

namespace matcomp {
namespace python {

namespace py = pybind11;

inline void RequireNdim(const py::array& array, int ndim, const char* name) {
  if (array.ndim() != ndim) {
    throw py::value_error(std::string("`") + name + "` must have " + std::to_string(ndim) +
                          " dimensions, got " + std::to_string(array.ndim()));
  }
}

// A row-major (C-contiguous), T-aligned array of T: the input itself when it already is one,
// else a copy. A copy that cannot be made (e.g. a broadcast view far larger than memory) is a
// MemoryError naming the argument, never a null array used anyway.
template <typename T>
py::array_t<T, py::array::c_style> AsContiguous(const py::array& array, const char* name) {
  auto contiguous = py::array_t<T, py::array::c_style>::ensure(array);
  if (!contiguous) {
    const std::string message = std::string("`") + name + "` (" + std::to_string(array.size()) +
                                " elements) could not be copied to a contiguous array";
    PyErr_SetString(PyExc_MemoryError, message.c_str());
    throw py::error_already_set();
  }
  if (reinterpret_cast<std::uintptr_t>(contiguous.data()) % alignof(T) == 0) return contiguous;
  // NumPy keeps misaligned views (e.g. np.frombuffer at an odd offset) as they are; the core
  // needs T-aligned data.
  std::vector<py::ssize_t> shape(contiguous.shape(), contiguous.shape() + contiguous.ndim());
  py::array_t<T, py::array::c_style> aligned(shape);
  std::memcpy(aligned.mutable_data(), contiguous.data(), contiguous.nbytes());
  return aligned;
}

// A limit as the docs write it: 1e150, not 1e+150.
inline std::string FormatLimit(double value) {
  std::ostringstream text;
  text << value;
  std::string result = text.str();
  const auto plus = result.find("e+");
  if (plus != std::string::npos) result.erase(plus + 1, 1);
  return result;
}

// `num_threads`: 0 (or negative) means one per hardware thread; at most kMaxCoreThreads.
inline int CheckedThreads(int64_t num_threads) {
  if (num_threads > kMaxCoreThreads) {
    throw py::value_error("`num_threads` must be at most " + std::to_string(kMaxCoreThreads) +
                          " (0: one per hardware thread), got " + std::to_string(num_threads));
  }
  return static_cast<int>(num_threads);
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
