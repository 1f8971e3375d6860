// Network32 / Network64: layers and parameters, and prediction.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "arrays.h"
#include "fastmlp/finite_check.h"
#include "fastmlp/network.h"
#include "fastmlp/sizes.h"

namespace fastmlp::bindings {

namespace {

// A layer's batch normalization: momentum, epsilon, center, scale.
using NormSettings = std::tuple<double, double, bool, bool>;

// The batch normalization array `name` of layer l (gamma, beta, moving_mean, moving_variance,
// or with grad the gradients gamma, beta; with the prefix "input_", those of its input batch
// normalization); null when the layer has none.
template <class T>
T* norm_array(Network<T>& n, std::size_t l, const std::string& name, bool grad) {
  if (name == "input_gamma") return grad ? n.input_gamma_grad(l) : n.input_gamma(l);
  if (name == "input_beta") return grad ? n.input_beta_grad(l) : n.input_beta(l);
  if (!grad && name == "input_moving_mean") return n.input_moving_mean(l);
  if (!grad && name == "input_moving_variance") return n.input_moving_variance(l);
  if (name == "gamma") return grad ? n.gamma_grad(l) : n.gamma(l);
  if (name == "beta") return grad ? n.beta_grad(l) : n.beta(l);
  if (!grad && name == "moving_mean") return n.moving_mean(l);
  if (!grad && name == "moving_variance") return n.moving_variance(l);
  throw py::value_error("unknown batch normalization array '" + name + "'");
}

// How many values norm_array(n, l, name) holds: fan_in(l) for the input normalization's.
template <class T>
py::ssize_t norm_size(const Network<T>& n, std::size_t l, const std::string& name) {
  return py::ssize_t(name.rfind("input_", 0) == 0 ? n.fan_in(l) : n.spec(l).units);
}

// Checked batch normalization settings.
void check_norm(const NormSettings& settings) {
  const auto& [momentum, epsilon, center, scale] = settings;
  (void)center;
  (void)scale;
  if (!(momentum >= 0 && momentum <= 1)) throw py::value_error("batch normalization momentum must be in [0, 1]");
  if (!(epsilon > 0) || !std::isfinite(epsilon)) throw py::value_error("batch normalization epsilon must be positive");
}

// penalties: per layer (kernel l1, kernel l2, bias l1, bias l2), or empty for none.
template <class T>
std::shared_ptr<Network<T>> make_network(const py::object& input_dim, const std::vector<py::object>& units,
                                         const std::vector<std::string>& activations,
                                         const std::vector<bool>& use_bias,
                                         const std::vector<std::array<double, 4>>& penalties,
                                         const std::vector<double>& alphas,
                                         const std::vector<double>& dropout,
                                         const std::vector<std::optional<NormSettings>>& norms,
                                         const std::vector<std::optional<NormSettings>>& input_norms,
                                         const std::vector<double>& input_dropout) {
  if (units.size() != activations.size() || units.size() != use_bias.size())
    throw py::value_error("units, activations and use_bias must have the same length");
  if (!penalties.empty() && penalties.size() != units.size())
    throw py::value_error("one penalty entry per layer is needed");
  if (!norms.empty() && norms.size() != units.size())
    throw py::value_error("one batch normalization entry (or None) per layer is needed");
  if (!input_norms.empty() && input_norms.size() != units.size())
    throw py::value_error("one input batch normalization entry (or None) per layer is needed");
  if (!input_dropout.empty() && input_dropout.size() != units.size())
    throw py::value_error("one input dropout rate per layer is needed");
  std::vector<LayerSpec> specs;
  for (std::size_t l = 0; l < units.size(); ++l) {
    LayerSpec spec{size_arg(units[l], "units"), parse_activation(activations[l]), bool(use_bias[l])};
    // Beyond 64 bits (saturated): refused here, by the value given.
    if (spec.units == std::numeric_limits<std::size_t>::max())
      throw SizeError("layer " + std::to_string(l) + " has " + std::string(py::str(units[l])) + " units, more than the " +
                          std::to_string(kMaxDim) + " a layer may have",
                      long(l));
    spec.alpha = alphas.empty() ? default_activation_alpha(spec.activation) : alphas.at(l);
    if (!std::isfinite(spec.alpha)) throw py::value_error("activation parameters must be finite");
    spec.dropout = dropout.empty() ? 0.0 : dropout.at(l);
    if (!(spec.dropout >= 0 && spec.dropout < 1)) throw py::value_error("dropout rates must be in [0, 1)");
    if (!penalties.empty()) {
      for (double v : penalties[l])
        if (!(v >= 0) || !std::isfinite(v)) throw py::value_error("regularization factors must be finite and >= 0");
      spec.kernel_l1 = penalties[l][0];
      spec.kernel_l2 = penalties[l][1];
      spec.bias_l1 = penalties[l][2];
      spec.bias_l2 = penalties[l][3];
    }
    if (!norms.empty() && norms[l].has_value()) {
      check_norm(*norms[l]);
      const auto& [momentum, epsilon, center, scale] = *norms[l];
      spec.batch_norm = true;
      spec.norm_momentum = momentum;
      spec.norm_epsilon = epsilon;
      spec.norm_center = center;
      spec.norm_scale = scale;
    }
    if (!input_norms.empty() && input_norms[l].has_value()) {
      check_norm(*input_norms[l]);
      const auto& [momentum, epsilon, center, scale] = *input_norms[l];
      spec.input_norm = true;
      spec.input_norm_momentum = momentum;
      spec.input_norm_epsilon = epsilon;
      spec.input_norm_center = center;
      spec.input_norm_scale = scale;
    }
    spec.input_dropout = input_dropout.empty() ? 0.0 : input_dropout.at(l);
    if (!(spec.input_dropout >= 0 && spec.input_dropout < 1)) throw py::value_error("dropout rates must be in [0, 1)");
    specs.push_back(spec);
  }
  const std::size_t inputs = size_arg(input_dim, "input_dim");
  if (inputs == std::numeric_limits<std::size_t>::max())
    throw SizeError("input dimension " + std::string(py::str(input_dim)) + " is more than the " + std::to_string(kMaxDim) +
                    " input features a network may have");
  py::gil_scoped_release release;  // allocates and zeroes every parameter array
  return std::make_shared<Network<T>>(inputs, std::move(specs));
}

template <class T>
py::array_t<T> copy_out(const T* data, std::vector<py::ssize_t> shape) {
  py::array_t<T> out(shape);
  std::copy(data, data + out.size(), out.mutable_data());
  return out;
}

// l, checked: the accessors below read the sizes of layer l (and l - 1) before any at().
template <class T>
std::size_t layer_arg(const Network<T>& n, std::size_t l) {
  if (l >= n.num_layers())
    throw py::index_error("layer index " + std::to_string(l) + " is out of range for a network of " +
                          std::to_string(n.num_layers()) + " layers");
  return l;
}

template <class T>
void copy_in(T* dst, const py::array& src, std::vector<py::ssize_t> shape, const char* name) {
  const int ndim = int(shape.size());
  const auto m = contiguous<T>(src, name, ndim, ndim == 2 ? std::size_t(shape[1]) : 0);
  if (py::ssize_t(m.rows) != shape[0])
    throw py::value_error(std::string(name) + " has shape " + shape_of(src) + ", expected " +
                          shape_of(py::array_t<T>(shape)));
  std::copy(m.data, m.data + m.rows * m.cols, dst);
}

template <class T>
void bind(py::module_& m, const char* name) {
  using Net = Network<T>;
  py::class_<Net, std::shared_ptr<Net>>(m, name)
      .def(py::init(&make_network<T>), py::arg("input_dim"), py::arg("units"),
           py::arg("activations"), py::arg("use_bias"),
           py::arg("penalties") = std::vector<std::array<double, 4>>{},
           py::arg("alphas") = std::vector<double>{}, py::arg("dropout") = std::vector<double>{},
           py::arg("norms") = std::vector<std::optional<NormSettings>>{},
           py::arg("input_norms") = std::vector<std::optional<NormSettings>>{},
           py::arg("input_dropout") = std::vector<double>{})
      .def("set_norm_trainable",
           [](Net& n, std::size_t l, bool trainable) {
             layer_arg(n, l);
             n.set_norm_trainable(l, trainable);
           })
      .def("set_input_norm_trainable",
           [](Net& n, std::size_t l, bool trainable) {
             layer_arg(n, l);
             n.set_input_norm_trainable(l, trainable);
           })
      .def(
          "get_norm",
          [](Net& n, std::size_t l, const std::string& array, bool grad) -> py::object {
            layer_arg(n, l);
            const T* p = norm_array(n, l, array, grad);
            if (p == nullptr) return py::none();
            return copy_out(p, {norm_size(n, l, array)});
          },
          py::arg("layer"), py::arg("name"), py::arg("grad") = false,
          "A copy of layer's batch normalization array `name` (or its gradient), or None.")
      .def(
          "set_norm",
          [](Net& n, std::size_t l, const std::string& array, const py::array& a) {
            layer_arg(n, l);
            T* p = norm_array(n, l, array, false);
            if (p == nullptr) throw py::value_error("this layer has no batch normalization " + array);
            copy_in(p, a, {norm_size(n, l, array)}, array.c_str());
          },
          py::arg("layer"), py::arg("name"), py::arg("values"))
      .def("regularization_penalty", &Net::regularization_penalty)
      .def("set_trainable",
           [](Net& n, std::size_t l, bool trainable) {
             layer_arg(n, l);
             n.set_trainable(l, trainable);
           })
      .def("is_trainable",
           [](Net& n, std::size_t l) {
             layer_arg(n, l);
             return n.spec(l).trainable;
           })
      .def_property_readonly("input_dim", &Net::input_dim)
      .def_property_readonly("output_dim", &Net::output_dim)
      .def_property_readonly("num_layers", &Net::num_layers)
      .def("batch_row_stride",
           [](Net& n, std::size_t l) {
             layer_arg(n, l);
             return n.batch_row_stride(l);
           })
      .def("get_kernel",
           [](Net& n, std::size_t l) {
             layer_arg(n, l);
             return copy_out(n.kernel(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.spec(l).units)});
           })
      .def("get_bias",
           [](Net& n, std::size_t l) -> py::object {
             layer_arg(n, l);
             if (n.bias(l) == nullptr) return py::none();
             return copy_out(n.bias(l), {py::ssize_t(n.spec(l).units)});
           })
      .def("set_kernel",
           [](Net& n, std::size_t l, const py::array& a) {
             layer_arg(n, l);
             copy_in(n.kernel(l), a, {py::ssize_t(n.fan_in(l)), py::ssize_t(n.spec(l).units)}, "kernel");
           })
      .def("set_bias",
           [](Net& n, std::size_t l, const py::array& a) {
             layer_arg(n, l);
             if (n.bias(l) == nullptr) throw py::value_error("this layer has no bias");
             copy_in(n.bias(l), a, {py::ssize_t(n.spec(l).units)}, "bias");
           })
      .def("get_kernel_grad",
           [](Net& n, std::size_t l) {
             layer_arg(n, l);
             return copy_out(n.kernel_grad(l), {py::ssize_t(n.fan_in(l)), py::ssize_t(n.spec(l).units)});
           })
      .def("get_bias_grad",
           [](Net& n, std::size_t l) -> py::object {
             layer_arg(n, l);
             if (n.bias_grad(l) == nullptr) return py::none();
             return copy_out(n.bias_grad(l), {py::ssize_t(n.spec(l).units)});
           })
      .def(
          "predict",
          [](Net& n, const py::array& x_arr, const py::object& batch) {
            const auto x = contiguous<T>(x_arr, "x", 2, n.input_dim());
            const std::size_t batch_size = size_arg(batch, "batch_size");
            if (batch_size == 0) throw py::value_error("batch_size must be at least 1");
            py::array_t<T> out({py::ssize_t(x.rows), py::ssize_t(n.output_dim())});
            T* o = out.mutable_data();
            py::gil_scoped_release release;
            n.predict(x.data, x.rows, batch_size, o);
            return out;
          },
          py::arg("x"), py::arg("batch_size"))
      .def(
          "try_predict_small",
          [](Net& n, const py::handle& obj) -> py::object {
            // The per-sample loop's call: a few rows already in the network's dtype and layout
            // are predicted as they are (finiteness checked as they are); anything else gives None,
            // and the caller converts it and calls predict.
            if (!py::isinstance<py::array>(obj)) return py::none();
            const auto a = py::reinterpret_borrow<py::array>(obj);
            if (!a.dtype().is(py::dtype::of<T>()) || a.ndim() != 2 || a.shape(0) == 0 ||
                std::size_t(a.shape(1)) != n.input_dim() || !(a.flags() & py::array::c_style) ||
                reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
              return py::none();
            const T* x = static_cast<const T*>(a.data());
            const auto rows = std::size_t(a.shape(0));
            py::array_t<T> out({py::ssize_t(rows), py::ssize_t(n.output_dim())});
            if (rows == 1) {
              n.predict_row(x, out.mutable_data());  // checks finiteness as it lists the nonzeros
              return out;
            }
            try {
              n.predict(x, rows, rows, out.mutable_data());  // notes NaN and infinity as it goes
            } catch (const NonFiniteInput&) {
              n.check_finite(x, rows);  // words the error: "`x` contains NaN or infinity ..."
              throw;
            }
            return out;
          },
          py::arg("x"));
}

}  // namespace

void bind_network(py::module_& m) {
  m.def(
      "first_non_finite_row",
      [](const py::array& x) -> std::int64_t {
        // float32 or float64, 2-D, C-contiguous (the Python side reshapes, never copies).
        if (x.dtype().is(py::dtype::of<float>())) {
          const auto a = contiguous<float>(x, "x", 2);
          py::gil_scoped_release release;
          return first_non_finite_row(a.data, a.rows, a.cols);
        }
        const auto a = contiguous<double>(x, "x", 2);
        py::gil_scoped_release release;
        return first_non_finite_row(a.data, a.rows, a.cols);
      },
      py::arg("x"), "Index of the first row holding NaN or infinity, or -1.");
  m.def("set_sparse_density_threshold", &set_sparse_density_threshold, py::arg("density"),
        "Largest input density for the first layer's sparse path (0: off). Results do not change.");
  m.def("sparse_density_threshold", &sparse_density_threshold);
  m.def("set_row_padding", &set_row_padding, py::arg("on"),
        "Whether networks built from now on pad their hidden layers' batch rows to whole cache lines. "
        "Results do not change.");
  m.def("row_padding", &row_padding);
  m.def("set_min_product_split_work", &set_min_product_split_work, py::arg("n"),
        "The least multiply-adds a thread of a split dense product (tests: splits for small models). "
        "Results do not change.");
  m.def("min_product_split_work", &min_product_split_work);
  bind<float>(m, "Network32");
  bind<double>(m, "Network64");
}

}  // namespace fastmlp::bindings
