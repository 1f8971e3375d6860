#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fastmlp/dispatch.h"

namespace fastmlp::bindings {

namespace py = pybind11;

void bind_dispatch(py::module_& m) {
  m.def("available_isas", &available_isas,
        "Instruction sets compiled in and supported by this CPU, best first.");
  m.def("compiled_isas", &compiled_isas, "Instruction sets compiled into this build.");
  m.def("active_isa", &active_isa, "The instruction set whose kernels run now.");
  m.def("set_isa", &set_active_isa, py::arg("name"),
        "Switch every kernel to another instruction set (for tests and comparisons).");
  m.def("select_isa_from_environment", &select_isa_from_environment,
        "Apply FASTMLP_ISA, or pick the best instruction set.");
}

}  // namespace fastmlp::bindings
