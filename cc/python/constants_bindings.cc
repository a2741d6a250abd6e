// _core.constants(): the limits and constants of cc/core/constants.h, by name.
#include <pybind11/pybind11.h>

#include "cc/core/constants_list.h"
#include "cc/python/bindings.h"

namespace matcomp {
namespace python {

void BindConstants(py::module_& module) {
  module.def(
      "constants",
      [] {
        py::dict values;
        ForEachConstant([&values](const char* name, auto value) { values[name] = value; });
        return values;
      },
      "{name: value} of every constant in cc/core/constants.h, as this build compiled them.");
}

}  // namespace python
}  // namespace matcomp
