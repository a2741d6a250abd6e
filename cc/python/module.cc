// tf_matcomp._core: the C++ core's math for NumPy, with no TensorFlow involved.
#include <pybind11/pybind11.h>

#include "cc/python/bindings.h"

// A portable build (setup.py) compiles this file once per ISA level, as _core_x86_64_v3 etc.
#ifndef MATCOMP_CORE_MODULE
#define MATCOMP_CORE_MODULE _core
#endif

PYBIND11_MODULE(MATCOMP_CORE_MODULE, module) {
  module.doc() =
      "The C++ core of tf_matcomp for NumPy arrays (the math behind the TF kernels).\n\n"
      "Functions release the GIL while they compute and take `num_threads` (0: one per "
      "hardware thread); results do not depend on it.";
  matcomp::python::BindConstants(module);
  matcomp::python::BindKMeans(module);
  matcomp::python::BindSimhash(module);
}
