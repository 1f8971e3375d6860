#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/thread_pool.h"

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
  m.def("default_num_threads", &default_num_threads,
        "FASTMLP_NUM_THREADS if set, else the CPUs this process may use.");
  m.def(
      "set_num_threads",
      [](long long n) {
        if (n < 1 || n > 1024)
          throw py::value_error("the number of threads must be an integer from 1 to 1024, got " +
                                std::to_string(n));
        py::gil_scoped_release release;
        ThreadPool::instance().set_num_threads(std::size_t(n));
      },
      py::arg("n"));
  m.def("get_num_threads", [] { return ThreadPool::instance().num_threads(); });
}

}  // namespace fastmlp::bindings
