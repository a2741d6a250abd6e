// _core.simhash_compress / simhash_decompress / simhash_projection: the simhash core for NumPy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <new>
#include <string>

#include "cc/core/simhash.h"
#include "cc/python/array_checks.h"
#include "cc/python/bindings.h"
#include "cc/python/thread_runner.h"

namespace matcomp {
namespace python {
namespace {

void RequireValidSizes(int64_t rows, int64_t cols, int64_t num_bits, const char* rows_name) {
  const std::string invalid = ValidateSimhashSizes(rows, cols, num_bits, rows_name);
  if (!invalid.empty()) throw py::value_error(invalid);
}

ProjectionKind ParseProjection(const std::string& name) {
  ProjectionKind kind;
  const std::string invalid = ParseProjectionKind(name, &kind);
  if (!invalid.empty()) throw py::value_error(invalid);
  return kind;
}

// Runs the core (GIL released); its std::bad_alloc (scratch that cannot be allocated) becomes a
// MemoryError saying what ran out.
template <typename Compute>
void ComputeReportingOutOfMemory(const char* what, Compute&& compute) {
  try {
    NativeSection section;
    compute();
  } catch (const std::bad_alloc&) {  // the section has ended: the GIL is held again
    const std::string message = std::string(what) + ": out of memory allocating scratch buffers";
    PyErr_SetString(PyExc_MemoryError, message.c_str());
    throw py::error_already_set();
  }
}

SimhashScale ParseScale(const std::string& scale) {
  if (scale == "least_squares") return SimhashScale::kLeastSquares;
  if (scale == "norm") return SimhashScale::kNorm;
  throw py::value_error("`scale` must be 'least_squares' or 'norm', got '" + scale + "'");
}

template <typename T>
py::tuple Compress(const py::array& a, int64_t num_bits, uint64_t seed, ProjectionKind projection,
                   SimhashScale scale, int num_threads) {
  auto values = AsContiguous<T>(a, "a");
  const int64_t rows = values.shape(0), cols = values.shape(1);
  py::array_t<uint8_t> signs({num_bits, PackedWidth(cols)});
  py::array_t<T> scales(cols);
  // Buffers are taken while the GIL is held: pybind11 may touch reference counts there.
  const T* input = values.data();
  uint8_t* signs_data = signs.mutable_data();
  T* scales_data = scales.mutable_data();
  bool finite = true;
  ComputeReportingOutOfMemory("simhash_compress", [&] {
    finite = SimhashCompress<T>(input, rows, cols, num_bits, seed, projection, scale,
                                ThreadRunner(num_threads), signs_data, scales_data);
  });
  // `a` is read in place without the GIL: a value another thread changed mid-call may still
  // reach the scales; a non-finite scale is never returned.
  finite = finite && std::all_of(scales_data, scales_data + cols,
                                 [](T value) { return std::isfinite(value); });
  if (!finite) throw py::value_error("`a` must contain only finite values (no NaN or Inf)");
  return py::make_tuple(signs, scales);
}

py::tuple CompressArray(const py::array& a, int64_t num_bits, int64_t signed_seed,
                        const std::string& scale, const std::string& projection,
                        int64_t requested_threads) {
  const int num_threads = CheckedThreads(requested_threads);
  const uint64_t seed = CheckedSeed(signed_seed);
  RequireNdim(a, 2, "a");
  RequireValidSizes(a.shape(0), a.shape(1), num_bits, "a");
  const SimhashScale parsed = ParseScale(scale);
  const ProjectionKind kind = ParseProjection(projection);
  if (HasDtype<float>(a)) return Compress<float>(a, num_bits, seed, kind, parsed, num_threads);
  if (HasDtype<double>(a)) return Compress<double>(a, num_bits, seed, kind, parsed, num_threads);
  RejectDtype(a, "a", "float32 or float64");
}

template <typename T>
py::array Decompress(const py::array& signs, const py::array& scales, int64_t num_rows,
                     uint64_t seed, ProjectionKind projection, int num_threads) {
  auto packed = AsContiguous<uint8_t>(signs, "signs");
  auto column_scales = AsContiguous<T>(scales, "scales");
  const int64_t num_bits = packed.shape(0), cols = column_scales.shape(0);
  py::array_t<T> out({num_rows, cols});
  const uint8_t* signs_data = packed.data();
  const T* scales_data = column_scales.data();
  T* out_data = out.mutable_data();
  ComputeReportingOutOfMemory("simhash_decompress", [&] {
    SimhashDecompress<T>(signs_data, scales_data, num_rows, cols, num_bits, seed, projection,
                         ThreadRunner(num_threads), out_data);
  });
  return out;
}

py::array DecompressArrays(const py::array& signs, const py::array& scales, int64_t num_rows,
                           int64_t signed_seed, const std::string& projection,
                           int64_t requested_threads) {
  const int num_threads = CheckedThreads(requested_threads);
  const uint64_t seed = CheckedSeed(signed_seed);
  RequireNdim(signs, 2, "signs");
  RequireNdim(scales, 1, "scales");
  if (!HasDtype<uint8_t>(signs)) RejectDtype(signs, "signs", "uint8");
  if (signs.shape(1) != PackedWidth(scales.shape(0))) {
    throw py::value_error("`signs` must have ceil(len(scales) / 8) = " +
                          std::to_string(PackedWidth(scales.shape(0))) + " columns, got " +
                          std::to_string(signs.shape(1)));
  }
  RequireValidSizes(num_rows, scales.shape(0), signs.shape(0), "num_rows");
  const ProjectionKind kind = ParseProjection(projection);
  if (HasDtype<float>(scales)) {
    return Decompress<float>(signs, scales, num_rows, seed, kind, num_threads);
  }
  if (HasDtype<double>(scales)) {
    return Decompress<double>(signs, scales, num_rows, seed, kind, num_threads);
  }
  RejectDtype(scales, "scales", "float32 or float64");
}

py::array Projection(int64_t num_rows, int64_t num_bits, int64_t signed_seed,
                     const py::object& dtype, const std::string& projection,
                     int64_t requested_threads) {
  const int num_threads = CheckedThreads(requested_threads);
  const uint64_t seed = CheckedSeed(signed_seed);
  RequireValidSizes(num_rows, 1, num_bits, "num_rows");
  const ProjectionKind kind = ParseProjection(projection);
  const py::dtype wanted = py::dtype::from_args(dtype);
  auto fill = [&](auto* tag) -> py::array {
    using T = std::remove_pointer_t<decltype(tag)>;
    py::array_t<T> projection({num_rows, num_bits});
    T* data = projection.mutable_data();
    {
      NativeSection section;
      FillProjection<T>(seed, kind, num_rows, num_bits, ThreadRunner(num_threads), data);
    }
    return projection;
  };
  if (wanted.is(py::dtype::of<float>())) return fill(static_cast<float*>(nullptr));
  if (wanted.is(py::dtype::of<double>())) return fill(static_cast<double*>(nullptr));
  throw py::value_error("`dtype` must be float32 or float64, got " + std::string(py::str(wanted)));
}

}  // namespace

void BindSimhash(py::module_& module) {
  module.def("simhash_compress", &CompressArray, py::arg("a"), py::arg("num_bits"),
             py::arg("seed") = 0, py::arg("scale") = "least_squares",
             py::arg("projection") = "gaussian", py::arg("num_threads") = 0,
             "Simhash of a [m, n] float32/float64 array: (signs uint8 [num_bits, ceil(n/8)], "
             "scales [n]). Bit-identical to the SimhashCompress TF kernel (cc/core/simhash.h).");
  module.def("simhash_decompress", &DecompressArrays, py::arg("signs"), py::arg("scales"),
             py::arg("num_rows"), py::arg("seed") = 0, py::arg("projection") = "gaussian",
             py::arg("num_threads") = 0,
             "R · S · diag(scales) [num_rows, len(scales)] from packed signs and scales.");
  module.def("simhash_projection", &Projection, py::arg("num_rows"), py::arg("num_bits"),
             py::arg("seed") = 0, py::arg("dtype") = py::dtype::of<float>(),
             py::arg("projection") = "gaussian", py::arg("num_threads") = 0,
             "The projection R [num_rows, num_bits] regenerated from the seed.");
}

}  // namespace python
}  // namespace matcomp
