// Trainer32 / Trainer64: loss, metrics, optimizer and the native training loop.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>
#include <string>

#include "arrays.h"
#include "optimizer_config.h"
#include "fastmlp/hessian.h"
#include "fastmlp/trainer.h"

namespace fastmlp::bindings {

namespace {

template <class T>
DataView<T> data_view(Trainer<T>& t, const py::array& x_arr, const py::array& y_arr,
                      const py::object& weights = py::none()) {
  const Network<T>& net = t.network();
  const auto x = contiguous<T>(x_arr, "x", 2, net.input_dim());
  DataView<T> d{x.data, x.rows, nullptr, nullptr};
  if (is_sparse(t.config().loss)) {
    const auto labels = contiguous<std::int32_t>(y_arr, "y", 1);
    if (labels.rows != x.rows) throw py::value_error("x and y have different numbers of samples");
    d.labels = labels.data;
  } else {
    const auto y = contiguous<T>(y_arr, "y", 2, net.output_dim());
    if (y.rows != x.rows) throw py::value_error("x and y have different numbers of samples");
    d.y = y.data;
  }
  if (!weights.is_none()) {
    const auto w = contiguous<T>(weights.cast<py::array>(), "sample_weight", 1);
    if (w.rows != x.rows) throw py::value_error("sample_weight must have one weight per sample");
    for (std::size_t i = 0; i < w.rows; ++i)
      if (!std::isfinite(w.data[i])) throw py::value_error("sample_weight must be finite");
    d.weights = w.data;
  }
  return d;
}

// {"thresholds": [...], "evenly": bool, "top_k": int, "from_logits": bool}, as metrics.py
// builds it.
ConfusionSpec confusion_spec_from(const py::dict& d) {
  ConfusionSpec spec;
  spec.thresholds = d["thresholds"].cast<std::vector<double>>();
  spec.evenly = d["evenly"].cast<bool>();
  const long long k = d["top_k"].cast<long long>();
  if (k < 0) throw py::value_error("top_k must be >= 0");
  spec.top_k = std::size_t(k);
  spec.from_logits = d["from_logits"].cast<bool>();
  return spec;
}

// A metric: its name, or {"name": str, "k": int, "from_logits": bool} (k and from_logits
// optional), as _compiled_metrics.py builds it.
MetricSpec metric_spec_from(const py::handle& entry) {
  if (py::isinstance<py::str>(entry)) return parse_metric(entry.cast<std::string>());
  const py::dict d = entry.cast<py::dict>();
  const long long k = d.contains("k") ? d["k"].cast<long long>() : 5;
  if (k < 1) throw py::value_error("a top-k metric needs k >= 1");
  const bool from_logits = d.contains("from_logits") && d["from_logits"].cast<bool>();
  return parse_metric(d["name"].cast<std::string>(), std::size_t(k), from_logits);
}

template <class T>
void bind(py::module_& m, const char* name) {
  using Tr = Trainer<T>;
  py::class_<Tr>(m, name)
      .def(py::init([](std::shared_ptr<Network<T>> net, const std::string& loss, bool from_logits,
                       const py::list& metrics, const py::dict& optimizer,
                       std::uint64_t seed, double loss_delta, const py::list& confusions) {
             if (!(loss_delta > 0) || !std::isfinite(loss_delta))
               throw py::value_error("loss_delta must be positive and finite");
             TrainingConfig config{parse_loss(loss), from_logits, {}, loss_delta};
             for (const auto& metric : metrics) config.metrics.push_back(metric_spec_from(metric));
             for (const auto& spec : confusions)
               config.confusions.push_back(confusion_spec_from(spec.cast<py::dict>()));
             return std::make_unique<Tr>(std::move(net), std::move(config),
                                         optimizer_config_from(optimizer), seed);
           }),
           py::arg("network"), py::arg("loss"), py::arg("from_logits"), py::arg("metrics"),
           py::arg("optimizer"), py::arg("seed"), py::arg("loss_delta") = kHuberDelta,
           py::arg("confusions") = py::list())
      .def_property(
          "learning_rate", [](Tr& t) { return t.optimizer().current_learning_rate(); },
          [](Tr& t, double lr) { t.optimizer().set_learning_rate(lr); },
          "The rate of the next step; setting it replaces any schedule by a constant.")
      .def(
          "set_learning_rates",
          [](Tr& t, long long first_step, std::vector<double> rates) {
            if (first_step < 0) throw py::value_error("first_step must be >= 0");
            t.optimizer().set_learning_rates(first_step, std::move(rates));
          },
          py::arg("first_step"), py::arg("rates"),
          "The rates of steps first_step, first_step + 1, ... (replaces any schedule).")
      .def_property(
          "iterations", [](Tr& t) { return t.optimizer().iterations(); },
          [](Tr& t, long long n) {
            if (n < 0) throw py::value_error("iterations must be >= 0");
            t.optimizer().set_iterations(n);
          })
      .def(
          "get_state",
          [](Tr& t) {
            // Everything a resumed run needs to continue bit for bit: the optimizer's step count
            // and slot arrays, and the shuffle generator.
            py::dict state;
            state["iterations"] = t.optimizer().iterations();
            py::list rng;
            for (std::uint64_t word : t.rng().state()) rng.append(py::int_(word));
            state["rng"] = rng;
            py::list slots;
            for (AlignedBuffer<T>* b : t.optimizer().state_buffers()) {
              py::array_t<T> a(py::ssize_t(b->size()));
              std::copy(b->data(), b->data() + b->size(), a.mutable_data());
              slots.append(a);
            }
            state["slots"] = slots;
            return state;
          },
          "The training state: {'iterations', 'rng', 'slots'}.")
      .def(
          "set_state",
          [](Tr& t, const py::dict& state) {
            const auto rng = state["rng"].cast<std::vector<std::uint64_t>>();
            if (rng.size() != 4) throw py::value_error("rng state must have 4 words");
            if (!Rng::valid_state({rng[0], rng[1], rng[2], rng[3]}))
              throw py::value_error("rng state must not be all zero (the generator would stall)");
            const auto iterations = state["iterations"].cast<long long>();
            if (iterations < 0) throw py::value_error("iterations must be >= 0");
            const auto slots = state["slots"].cast<py::list>();
            std::vector<AlignedBuffer<T>*> buffers = t.optimizer().state_buffers();
            if (slots.size() != buffers.size())
              throw py::value_error("the optimizer state has " + std::to_string(slots.size()) +
                                    " arrays; this optimizer keeps " + std::to_string(buffers.size()));
            const std::vector<bool> non_negative = t.optimizer().state_non_negative();
            std::vector<Matrix<T>> values;
            for (std::size_t i = 0; i < buffers.size(); ++i) {
              const auto slot = contiguous<T>(slots[i].cast<py::array>(), "optimizer state", 1);
              if (slot.rows != buffers[i]->size())
                throw py::value_error("optimizer state array " + std::to_string(i) + " has " +
                                      std::to_string(slot.rows) + " values, expected " +
                                      std::to_string(buffers[i]->size()));
              if (non_negative[i] && !std::all_of(slot.data, slot.data + slot.rows, [](T v) { return v >= T(0); }))
                throw py::value_error("optimizer state array " + std::to_string(i) +
                                      " holds a negative value (or NaN), but it is a sum or maximum of "
                                      "squares or magnitudes, never negative");
              values.push_back(slot);
            }
            // Validated in full above: now commit.
            for (std::size_t i = 0; i < buffers.size(); ++i)
              std::copy(values[i].data, values[i].data + values[i].rows, buffers[i]->data());
            t.optimizer().set_iterations(iterations);
            t.rng().set_state({rng[0], rng[1], rng[2], rng[3]});
          },
          py::arg("state"))
      .def_property_readonly(
          "last_step", [](Tr& t) { return std::string(step_name(t.last_step())); },
          "The step that ran train_batches' last batch (after any fallback).")
      .def(
          "begin_epoch", [](Tr& t, const py::object& n, bool shuffle) { t.begin_epoch(size_arg(n, "n"), shuffle); },
          py::arg("n"), py::arg("shuffle"))
      .def(
          "num_batches", [](Tr& t, const py::object& batch_size) { return t.num_batches(size_arg(batch_size, "batch_size")); },
          py::arg("batch_size"))
      .def(
          "train_batches",
          [](Tr& t, const py::array& x, const py::array& y, const py::object& batch, const py::object& first_arg,
             const py::object& count_arg, const py::object& w) {
            const DataView<T> d = data_view(t, x, y, w);
            const std::size_t batch_size = size_arg(batch, "batch_size"), first = size_arg(first_arg, "first"),
                              count = size_arg(count_arg, "count");
            py::gil_scoped_release release;
            return t.train_batches(d, batch_size, first, count);
          },
          py::arg("x"), py::arg("y"), py::arg("batch_size"), py::arg("first"),
          py::arg("count"), py::arg("sample_weight") = py::none())
      .def(
          "train_on_batch",
          [](Tr& t, const py::array& x, const py::array& y, const py::object& w) {
            const DataView<T> d = data_view(t, x, y, w);
            py::gil_scoped_release release;
            return t.train_on_batch(d);
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none())
      .def(
          "evaluate",
          [](Tr& t, const py::array& x, const py::array& y, const py::object& batch, const py::object& w) {
            const DataView<T> d = data_view(t, x, y, w);
            const std::size_t batch_size = size_arg(batch, "batch_size");
            py::gil_scoped_release release;
            return t.evaluate(d, batch_size);
          },
          py::arg("x"), py::arg("y"), py::arg("batch_size"), py::arg("sample_weight") = py::none())
      .def(
          "compute_gradients",
          [](Tr& t, const py::array& x, const py::array& y, const py::object& w) {
            const DataView<T> d = data_view(t, x, y, w);
            py::gil_scoped_release release;
            return t.compute_gradients(d);
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none())
      .def_property_readonly(
          "parameter_count", [](Tr& t) { return parameter_count(t.network()); },
          "The number of trainable weights P (the size of the Hessian's side).")
      .def(
          "hessian",
          [](Tr& t, const py::array& x, const py::array& y, const py::object& w) {
            const DataView<T> d = data_view(t, x, y, w);
            const std::size_t p = parameter_count(t.network());
            hessian_bytes(p);  // a SizeError naming P before the array is allocated
            py::array_t<double> out({py::ssize_t(p), py::ssize_t(p)});
            double* values = out.mutable_data();
            {
              py::gil_scoped_release release;
              loss_hessian(t.network(), t.loss_spec(), d, values);
            }
            return out;
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none(),
          "The (P, P) float64 Hessian of the loss compute_gradients differentiates (fastmlp/hessian.h).")
      .def(
          "hessian_vector_product",
          [](Tr& t, const py::array& x, const py::array& y, const py::array& v, const py::object& w) {
            const DataView<T> d = data_view(t, x, y, w);
            const std::size_t p = parameter_count(t.network());
            const auto direction = contiguous<double>(v, "v", 1);
            if (direction.rows != p)
              throw py::value_error("v must have one value per weight, " + std::to_string(p) + ", got shape " +
                                    shape_of(v));
            for (std::size_t i = 0; i < p; ++i)
              if (!std::isfinite(direction.data[i])) throw py::value_error("v must be finite");
            py::array_t<double> out(py::ssize_t{static_cast<py::ssize_t>(p)});
            double* values = out.mutable_data();
            {
              py::gil_scoped_release release;
              loss_hessian_vector_product(t.network(), t.loss_spec(), d, direction.data, values);
            }
            return out;
          },
          py::arg("x"), py::arg("y"), py::arg("v"), py::arg("sample_weight") = py::none(),
          "H @ v (P float64 values) without forming H (fastmlp/hessian.h).");
}

}  // namespace

void bind_trainer(py::module_& m) {
  // A ValueError, so that callers of the core see the kind of error fit raises for bad data.
  py::register_exception<NonFiniteInput>(m, "NonFiniteInputError", PyExc_ValueError);
  m.def("available_steps", &available_steps, "The ways fit can run a training step, best first.");
  m.def("active_step", &active_step, "The step fit is forced to run (where it can), or 'auto'.");
  m.def("set_step", &set_step, py::arg("name"),
        "Force fit's training step by name, or 'auto' (for tests and comparisons). Results do not change.");
  m.def("select_step_from_environment", &select_step_from_environment, "Apply FASTMLP_STEP, or choose 'auto'.");
  m.def("min_row_part_work", &min_row_part_work,
        "The least forward multiply-adds of a batch per part of the row split (a thread each).");
  m.def("set_min_row_part_work", &set_min_row_part_work, py::arg("n"),
        "Set min_row_part_work (tests: more parts for small models). Results do not change.");
  py::class_<Totals>(m, "Totals")
      .def_readonly("loss", &Totals::loss, "sum of per-sample losses")
      .def_readonly("metrics", &Totals::metrics, "sum of per-sample metric values, per metric")
      .def_readonly("samples", &Totals::samples)
      .def_property_readonly(
          "confusions",
          [](const Totals& t) {
            py::list out;
            for (const auto& counts : t.confusions)
              out.append(py::array_t<std::uint64_t>(py::ssize_t(counts.size()), counts.data()));
            return out;
          },
          "each confusion metric's counts (uint64 arrays, metrics.h's layout)");
  bind<float>(m, "Trainer32");
  bind<double>(m, "Trainer64");
}

}  // namespace fastmlp::bindings
