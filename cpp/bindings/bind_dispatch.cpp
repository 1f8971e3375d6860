#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "fastmlp/dispatch.h"

#include <algorithm>
#include "fastmlp/thread_pool.h"

#include <chrono>
#include <vector>

namespace fastmlp::bindings {

namespace py = pybind11;

void bind_dispatch(py::module_& m) {
  m.def("available_isas", &available_isas,
        "Instruction sets compiled in and supported by this CPU, best first.");
  m.def("compiled_isas", &compiled_isas, "Instruction sets compiled into this build.");
  m.def("built_isas", &built_isas,
        "Instruction sets whose kernel tables have been built: only ones this CPU supports.");
  m.def("active_isa", &active_isa, "The instruction set whose kernels run now.");
  m.def("set_isa", &set_active_isa, py::arg("name"),
        "Switch every kernel to another instruction set (for tests and comparisons).");
  m.def("select_isa_from_environment", &select_isa_from_environment,
        "Apply FASTMLP_ISA, or pick the best instruction set.");
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
  m.def(
      "set_worker_delay_for_tests",
      [](long long microseconds) {
        if (microseconds < 0 || microseconds > 1000000)
          throw py::value_error("microseconds must be an integer from 0 to 1000000, got " +
                                std::to_string(microseconds));
        ThreadPool::instance().set_worker_delay_for_tests(std::chrono::microseconds(microseconds));
      },
      py::arg("microseconds"),
      "Make each pool worker sleep this long after claiming a task (tests of late workers).");
  m.def("pool_jobs_run_alone", [] { return ThreadPool::instance().jobs_run_alone(); },
        "How many jobs the pool ran on the caller alone because its workers had been late.");
  m.def(
      "peak_gflops",
      [](std::size_t threads, double seconds, bool float64) {
        if (threads < 1 || threads > 1024) throw py::value_error("threads must be from 1 to 1024");
        if (!(seconds > 0 && seconds <= 60)) throw py::value_error("seconds must be in (0, 60]");
        py::gil_scoped_release release;
        // Calibrate a round count worth `seconds`, then time all threads running it at once.
        auto loop = [float64](std::size_t iterations) {
          if (float64) {
            double sink;
            const double flops = kernels<double>().fma_peak_loop(iterations, &sink);
            return flops + (sink == 0.1234 ? 1e-300 : 0.0);  // keep the result alive
          }
          float sink;
          const double flops = kernels<float>().fma_peak_loop(iterations, &sink);
          return flops + (sink == 0.1234f ? 1e-300 : 0.0);
        };
        using clock = std::chrono::steady_clock;
        std::size_t iterations = 1 << 16;
        for (;;) {
          const auto t0 = clock::now();
          loop(iterations);
          const double dt = std::chrono::duration<double>(clock::now() - t0).count();
          if (dt > seconds / 4 || iterations > (std::size_t(1) << 34)) {
            iterations = std::size_t(double(iterations) * seconds / std::max(dt, 1e-9)) + 1;
            break;
          }
          iterations *= 4;
        }
        ThreadPool& pool = ThreadPool::instance();
        const std::size_t old = pool.num_threads();
        if (threads != old) pool.set_num_threads(threads);
        std::vector<double> flops(threads, 0.0);
        const auto t0 = clock::now();
        pool.run(threads, [&](std::size_t t) { flops[t] = loop(iterations); });
        const double dt = std::chrono::duration<double>(clock::now() - t0).count();
        if (threads != old) pool.set_num_threads(old);
        double total = 0;
        for (double f : flops) total += f;
        return total / dt / 1e9;
      },
      py::arg("threads") = 1, py::arg("seconds") = 0.2, py::arg("float64") = false,
      "Measured FMA peak of the active ISA in GFLOP/s, on `threads` threads at once.");
}

}  // namespace fastmlp::bindings
