// One Bind* function per core algorithm; cc/python/module.cc calls them all.
#ifndef TF_MATCOMP_PYTHON_BINDINGS_H_
#define TF_MATCOMP_PYTHON_BINDINGS_H_

#include <pybind11/pybind11.h>

namespace matcomp {
namespace python {

namespace py = pybind11;

void BindConstants(py::module_& module);
void BindKMeans(py::module_& module);
void BindSimhash(py::module_& module);

}  // namespace python
}  // namespace matcomp

#endif  // TF_MATCOMP_PYTHON_BINDINGS_H_
