// _core.kmeans_quantize: KMeansQuantize's core for NumPy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "cc/core/kmeans.h"
#include "cc/python/array_checks.h"
#include "cc/python/bindings.h"
#include "cc/python/thread_runner.h"

namespace matcomp {
namespace python {
namespace {

KMeansMethod ParseMethod(const std::string& method) {
  if (method == "lloyd") return KMeansMethod::kLloyd;
  if (method == "optimal") return KMeansMethod::kOptimal;
  throw py::value_error("`method` must be 'lloyd' or 'optimal', got '" + method + "'");
}

template <typename T, typename Code>
py::tuple Quantize(const py::array& a, int64_t block_size, const KMeansOptions& options,
                   int num_threads) {
  auto values = AsContiguous<T>(a, "a");
  const int64_t rows = values.shape(0), cols = values.shape(1);
  py::array_t<T> codebook({options.num_clusters, block_size});
  py::array_t<Code> codes({rows, cols / block_size});
  // Buffers are taken while the GIL is held: pybind11 may touch reference counts there.
  const T* input = values.data();
  const int64_t size = values.size();
  T* codebook_data = codebook.mutable_data();
  Code* codes_data = codes.mutable_data();
  bool in_range;
  {
    NativeSection section;
    const ParallelFor parallel_for = ThreadRunner(num_threads);
    in_range = AllInKMeansRange(input, size, parallel_for);
    if (in_range) {
      KMeansQuantize<T, Code>(input, rows * (cols / block_size), block_size, options, parallel_for,
                              codebook_data, codes_data);
    }
  }
  // The array is read in place without the GIL: another thread may change it mid-call. What
  // it wrote then is never returned as a NaN codebook.
  const bool finite = std::all_of(codebook_data, codebook_data + codebook.size(),
                                  [](T value) { return std::isfinite(value); });
  if (!in_range || !finite) {
    throw py::value_error(
        "`a` must contain only finite values of magnitude <= " + FormatLimit(kMaxKMeansMagnitude) +
        (in_range ? " (it changed while being quantized)" : ""));
  }
  return py::make_tuple(codebook, codes);
}

template <typename T>
py::tuple QuantizeWithCodeType(const py::array& a, int64_t block_size, const KMeansOptions& options,
                               int num_threads) {
  return options.num_clusters <= kMaxUint8Clusters
             ? Quantize<T, uint8_t>(a, block_size, options, num_threads)
             : Quantize<T, int32_t>(a, block_size, options, num_threads);
}

py::tuple KMeansQuantizeArray(const py::array& a, int64_t num_clusters, int64_t block_size,
                              int64_t max_iterations, int64_t seed, bool snap_zero,
                              const std::string& method, int64_t requested_threads) {
  const int num_threads = CheckedThreads(requested_threads);
  RequireNdim(a, 2, "a");
  if (block_size < 1 || a.shape(1) % block_size != 0) {
    throw py::value_error("`block_size` must be >= 1 and divide the columns of `a` (" +
                          std::to_string(a.shape(1)) + "), got " + std::to_string(block_size));
  }
  KMeansOptions options;
  options.num_clusters = num_clusters;
  options.max_iterations = max_iterations;
  options.seed = CheckedSeed(seed);
  options.snap_zero = snap_zero;
  options.method = ParseMethod(method);
  const int64_t points = a.shape(0) * (a.shape(1) / block_size);
  const std::string invalid = ValidateKMeans(points, block_size, options);
  if (!invalid.empty()) throw py::value_error(invalid);
  if (HasDtype<float>(a)) return QuantizeWithCodeType<float>(a, block_size, options, num_threads);
  if (HasDtype<double>(a)) {
    return QuantizeWithCodeType<double>(a, block_size, options, num_threads);
  }
  RejectDtype(a, "a", "float32 or float64");
}

}  // namespace

void BindKMeans(py::module_& module) {
  module.def("kmeans_quantize", &KMeansQuantizeArray, py::arg("a"), py::arg("num_clusters"),
             py::arg("block_size") = 1, py::arg("max_iterations") = kDefaultMaxIterations,
             py::arg("seed") = 0, py::arg("snap_zero") = false, py::arg("method") = "lloyd",
             py::arg("num_threads") = 0,
             "k-means quantization of a [m, n] array viewed as m*n/block_size points of "
             "block_size values. Returns (codebook [num_clusters, block_size], codes "
             "[m, n/block_size]); codes are uint8 for num_clusters <= kMaxUint8Clusters, else "
             "int32. The same "
             "algorithm and results as the KMeansQuantize TF kernel (see cc/core/kmeans.h).");
}

}  // namespace python
}  // namespace matcomp
