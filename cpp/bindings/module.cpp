// fastmlp._core: the private extension module. One file binds each concept.
#include <pybind11/pybind11.h>

namespace fastmlp::bindings {
void bind_errors(pybind11::module_& m);
void bind_dispatch(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);
void bind_network(pybind11::module_& m);
void bind_trainer(pybind11::module_& m);
}  // namespace fastmlp::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastmlp's C++ core (private: use the fastmlp package)";
  fastmlp::bindings::bind_errors(m);
  fastmlp::bindings::bind_dispatch(m);
  fastmlp::bindings::bind_kernels(m);
  fastmlp::bindings::bind_network(m);
  fastmlp::bindings::bind_trainer(m);
}
