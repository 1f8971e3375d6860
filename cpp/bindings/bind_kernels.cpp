// fastmlp._core.kernels: each kernel of the active ISA, callable on NumPy arrays, so the tests can
// check every kernel on every ISA against the NumPy reference, with odd strides and misaligned
// views. The binding validates and allocates outputs; the kernels compute.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <limits>
#include <vector>
#include <string>

#include "arrays.h"
#include "fastmlp/aligned_buffer.h"
#include "fastmlp/dispatch.h"

namespace fastmlp::bindings {

namespace {

// A 2-D view with element strides (any sign, any layout), as the kernels take them.
template <class T>
struct Strided {
  T* data;
  std::size_t rows, cols;
  std::ptrdiff_t rs, cs;
};

template <class T>
Strided<T> strided(const py::array& a, const char* name, bool writable = false,
                   bool unit_columns = false) {
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": dtype " + std::string(py::str(a.dtype())) +
                         " does not match the other arrays");
  if (a.ndim() != 2)
    throw py::value_error(std::string(name) + " must be 2-D, got shape " + shape_of(a));
  if (a.strides(0) % py::ssize_t(sizeof(T)) != 0 || a.strides(1) % py::ssize_t(sizeof(T)) != 0)
    throw py::value_error(std::string(name) + ": strides must be whole elements");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable");
  const auto rs = std::ptrdiff_t(a.strides(0) / py::ssize_t(sizeof(T)));
  const auto cs = std::ptrdiff_t(a.strides(1) / py::ssize_t(sizeof(T)));
  // NumPy gives arrays without elements zero strides: nothing to check there.
  if (unit_columns && cs != 1 && a.shape(1) > 1 && a.shape(0) > 0)
    throw py::value_error(std::string(name) + " must have contiguous rows");
  return {static_cast<T*>(const_cast<void*>(a.data())), std::size_t(a.shape(0)),
          std::size_t(a.shape(1)), rs, cs};
}

template <class T>
py::array_t<T> new_matrix(std::size_t rows, std::size_t cols) {
  py::array_t<T> out({py::ssize_t(rows), py::ssize_t(cols)});
  std::fill(out.mutable_data(), out.mutable_data() + rows * cols, T(0));
  return out;
}

template <class T>
void require_shape(const Strided<T>& a, std::size_t rows, std::size_t cols, const char* name) {
  if (a.rows != rows || a.cols != cols)
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(rows) + ", " +
                          std::to_string(cols) + "), got (" + std::to_string(a.rows) + ", " +
                          std::to_string(a.cols) + ")");
}

// Row-wise kernels (softmax, losses) need at least one column per row.
template <class T>
void require_columns(const Strided<T>& a, const char* name) {
  if (a.cols == 0) throw py::value_error(std::string(name) + " must have at least one column");
}

template <class T>
py::object gemm(const py::array& a_arr, const py::array& b_arr, py::object c_obj, double alpha,
                double beta, const py::object& bias_obj, bool relu, const py::object& positive_obj,
                bool column_sums, const py::object& update_obj, double learning_rate) {
  const auto a = strided<T>(a_arr, "a"), b = strided<T>(b_arr, "b");
  if (a.cols != b.rows)
    throw py::value_error("a and b do not chain: shapes " + shape_of(a_arr) + " and " +
                          shape_of(b_arr));
  py::array c_arr = c_obj.is_none() ? py::array(new_matrix<T>(a.rows, b.cols))
                                    : py::array(c_obj.cast<py::array>());
  const auto c = strided<T>(c_arr, "c", true, true);
  require_shape(c, a.rows, b.cols, "c");
  // The epilogue's operands (kept alive by the caller's references until the call returns).
  GemmEpilogue<T> ep{};
  ep.relu = relu;
  if (!bias_obj.is_none()) {
    const auto bias = contiguous<T>(bias_obj.cast<py::array>(), "bias", 1);
    if (bias.rows != b.cols) throw py::value_error("bias must have one entry per column of c");
    ep.bias = bias.data;
  }
  if (!positive_obj.is_none()) {
    const auto positive = strided<T>(positive_obj.cast<py::array>(), "positive", false, true);
    require_shape(positive, a.rows, b.cols, "positive");
    ep.positive = positive.data;
    ep.ld_positive = positive.rs;
  }
  py::array_t<T> sums(py::ssize_t(b.cols));
  if (column_sums) ep.column_sums = sums.mutable_data();
  if (!update_obj.is_none()) {
    const auto update = strided<T>(update_obj.cast<py::array>(), "update", true, true);
    require_shape(update, a.rows, b.cols, "update");
    ep.update = update.data;
    ep.ld_update = update.rs;
    ep.learning_rate = T(learning_rate);
  }
  const bool any = relu || ep.bias != nullptr || ep.positive != nullptr || column_sums || ep.update != nullptr;
  const KernelTable<T>& k = kernels<T>();
  AlignedBuffer<T> pack(k.gemm_pack_elements + 1);
  {
    py::gil_scoped_release release;
    k.gemm({a.rows, b.cols, a.cols, T(alpha), a.data, a.rs, a.cs, b.data, b.rs, b.cs, T(beta),
            c.data, c.rs, pack.data(), any ? &ep : nullptr});
  }
  if (column_sums) return py::make_tuple(c_arr, sums);
  return std::move(c_arr);
}

// The activation's parameter: given, or its default (leaky_relu 0.2, elu 1.0).
double alpha_or_default(const py::object& alpha, Activation act) {
  return alpha.is_none() ? default_activation_alpha(act) : alpha.cast<double>();
}

template <class T>
py::array bias_activation(const py::array& z_arr, py::object bias_obj, const std::string& act,
                          py::object a_obj, const py::object& alpha) {
  const auto z = strided<T>(z_arr, "z", true, true);
  require_columns(z, "z");
  const T* bias = nullptr;
  if (!bias_obj.is_none()) {
    const auto b = contiguous<T>(bias_obj.cast<py::array>(), "bias", 1);
    if (b.rows != z.cols) throw py::value_error("bias must have one entry per column of z");
    bias = b.data;
  }
  py::array a_arr = a_obj.is_none() ? py::array(new_matrix<T>(z.rows, z.cols))
                                    : py::array(a_obj.cast<py::array>());
  const auto a = strided<T>(a_arr, "a", true, true);
  require_shape(a, z.rows, z.cols, "a");
  const Activation activation = parse_activation(act);
  const T param = T(alpha_or_default(alpha, activation));
  py::gil_scoped_release release;
  kernels<T>().bias_activation({z.rows, z.cols, activation, param, bias, z.data, z.rs, a.data, a.rs});
  return a_arr;
}

template <class T>
py::array activation_backward(const std::string& act, const py::array& z_arr,
                              const py::array& a_arr, const py::array& da_arr, const py::object& alpha) {
  const auto z = strided<T>(z_arr, "z", false, true), a = strided<T>(a_arr, "a", false, true);
  const auto da = strided<T>(da_arr, "da", false, true);
  require_columns(z, "z");
  require_shape(a, z.rows, z.cols, "a");
  require_shape(da, z.rows, z.cols, "da");
  auto dz = new_matrix<T>(z.rows, z.cols);
  const Activation activation = parse_activation(act);
  const T param = T(alpha_or_default(alpha, activation));
  T* out = dz.mutable_data();
  py::gil_scoped_release release;
  kernels<T>().activation_backward({z.rows, z.cols, activation, param, z.data, z.rs, a.data, a.rs,
                                    da.data, da.rs, out, std::ptrdiff_t(z.cols)});
  return dz;
}

template <class T>
py::tuple loss(const std::string& name, bool from_logits, const py::array& pred_arr,
               const py::array& y_arr, py::object weight_obj, double grad_scale, double delta) {
  const auto pred = strided<T>(pred_arr, "pred", false, true);
  require_columns(pred, "pred");
  const Loss kind = parse_loss(name);
  const T* y = nullptr;
  std::ptrdiff_t ldy = 0;
  const std::int32_t* labels = nullptr;
  if (is_sparse(kind)) {
    const auto l = contiguous<std::int32_t>(y_arr, "labels", 1);
    if (l.rows != pred.rows) throw py::value_error("one label per row of pred is needed");
    for (std::size_t r = 0; r < l.rows; ++r)
      if (l.data[r] < 0 || std::size_t(l.data[r]) >= pred.cols)
        throw py::value_error("label out of range");
    labels = l.data;
  } else {
    const auto t = strided<T>(y_arr, "y", false, true);
    require_shape(t, pred.rows, pred.cols, "y");
    y = t.data;
    ldy = t.rs;
  }
  const T* weight = nullptr;
  if (!weight_obj.is_none()) {
    const auto w = contiguous<T>(weight_obj.cast<py::array>(), "row_weight", 1);
    if (w.rows != pred.rows) throw py::value_error("one weight per row of pred is needed");
    weight = w.data;
  }
  auto grad = new_matrix<T>(pred.rows, pred.cols);
  py::array_t<T> row_loss(py::ssize_t(pred.rows));
  T* g = grad.mutable_data();
  T* rl = row_loss.mutable_data();
  double total;
  {
    py::gil_scoped_release release;
    total = kernels<T>().loss({kind, from_logits, pred.rows, pred.cols, pred.data, pred.rs, y, ldy,
                               labels, weight, T(grad_scale), g, std::ptrdiff_t(pred.cols), rl, T(delta)});
  }
  return py::make_tuple(total, row_loss, grad);
}

template <class T>
py::array column_sum(const py::array& x_arr) {
  const auto x = strided<T>(x_arr, "x", false, true);
  py::array_t<T> out(py::ssize_t(x.cols));
  T* o = out.mutable_data();
  py::gil_scoped_release release;
  kernels<T>().column_sum(x.rows, x.cols, x.data, x.rs, o);
  return out;
}

// Per-sample SGD's fused pass: updates w (a strided matrix with contiguous rows) in place and
// returns the next row's product through it.
template <class T>
py::array sgd_forward(const py::array& w_arr, const py::array& update_x_arr, bool update_skips_zeros,
                      const py::array& delta_arr, double learning_rate, const py::array& next_x_arr,
                      bool next_skips_zeros) {
  const auto w = strided<T>(w_arr, "w", true, true);
  const auto update_x = contiguous<T>(update_x_arr, "update_x", 1);
  const auto delta = contiguous<T>(delta_arr, "delta", 1);
  const auto next_x = contiguous<T>(next_x_arr, "next_x", 1);
  if (update_x.rows != w.rows || next_x.rows != w.rows)
    throw py::value_error("update_x and next_x must have one entry per row of w");
  if (delta.rows != w.cols) throw py::value_error("delta must have one entry per column of w");
  py::array_t<T> out(py::ssize_t(w.cols));
  T* o = out.mutable_data();
  py::gil_scoped_release release;
  kernels<T>().sgd_forward({w.rows, w.cols, w.data, w.rs, update_x.data, update_skips_zeros, delta.data,
                            T(learning_rate), next_x.data, next_skips_zeros, o});
  return out;
}

// A 1-D contiguous array of `cols` values, or null for None.
template <class T>
const T* optional_vector(const py::object& obj, std::size_t cols, const char* name) {
  if (obj.is_none()) return nullptr;
  const auto v = contiguous<T>(obj.cast<py::array>(), name, 1);
  if (v.rows != cols) throw py::value_error(std::string(name) + " must have one entry per column of x");
  return v.data;
}

template <class T>
py::tuple batch_norm(const py::array& x_arr, const py::object& gamma_obj, const py::object& beta_obj, double epsilon,
                     const py::object& mean_obj, const py::object& variance_obj) {
  const auto x = strided<T>(x_arr, "x", false, true);
  const T* gamma = optional_vector<T>(gamma_obj, x.cols, "gamma");
  const T* beta = optional_vector<T>(beta_obj, x.cols, "beta");
  const bool batch_stats = mean_obj.is_none();
  if (batch_stats != variance_obj.is_none()) throw py::value_error("give both mean and variance, or neither");
  if (batch_stats && x.rows == 0) throw py::value_error("x must have at least one row");
  py::array_t<T> mean(py::ssize_t(x.cols)), variance(py::ssize_t(x.cols));
  if (!batch_stats) {
    const T* m = optional_vector<T>(mean_obj, x.cols, "mean");
    const T* v = optional_vector<T>(variance_obj, x.cols, "variance");
    std::copy(m, m + x.cols, mean.mutable_data());
    std::copy(v, v + x.cols, variance.mutable_data());
  }
  py::array_t<T> y = new_matrix<T>(x.rows, x.cols);
  T* yd = y.mutable_data();
  T* md = mean.mutable_data();
  T* vd = variance.mutable_data();
  py::gil_scoped_release release;
  kernels<T>().batch_norm({x.rows, x.cols, x.data, x.rs, yd, std::ptrdiff_t(x.cols), gamma, beta, T(epsilon),
                           batch_stats, md, vd});
  py::gil_scoped_acquire acquire;
  return py::make_tuple(y, mean, variance);
}

template <class T>
py::tuple batch_norm_backward(const py::array& x_arr, const py::array& mean_arr, const py::array& variance_arr,
                              const py::array& delta_arr, const py::object& gamma_obj, double epsilon,
                              bool batch_stats) {
  const auto x = strided<T>(x_arr, "x", false, true);
  const auto d = strided<T>(delta_arr, "delta", false, true);
  require_shape(d, x.rows, x.cols, "delta");
  const T* mean = optional_vector<T>(mean_arr, x.cols, "mean");
  const T* variance = optional_vector<T>(variance_arr, x.cols, "variance");
  const T* gamma = optional_vector<T>(gamma_obj, x.cols, "gamma");
  py::array_t<T> dx = new_matrix<T>(x.rows, x.cols);
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t j = 0; j < x.cols; ++j) dx.mutable_data()[r * x.cols + j] = d.data[std::ptrdiff_t(r) * d.rs + std::ptrdiff_t(j)];
  py::array_t<T> dgamma(py::ssize_t(x.cols)), dbeta(py::ssize_t(x.cols));
  T* dxd = dx.mutable_data();
  T* dg = dgamma.mutable_data();
  T* db = dbeta.mutable_data();
  py::gil_scoped_release release;
  kernels<T>().batch_norm_backward({x.rows, x.cols, x.data, x.rs, mean, variance, gamma, T(epsilon), batch_stats, dxd,
                                    std::ptrdiff_t(x.cols), dg, db});
  py::gil_scoped_acquire acquire;
  return py::make_tuple(dx, dgamma, dbeta);
}

template <class T>
void optimizer_update(const std::string& kind, const py::array& w_arr, const py::array& g_arr,
                      const py::list& state_list, const py::dict& h) {
  const auto w = contiguous<T>(w_arr, "w", 1), g = contiguous<T>(g_arr, "g", 1);
  if (!w_arr.writeable()) throw py::value_error("w must be writable");
  if (w.rows != g.rows) throw py::value_error("w and g must have the same length");
  OptimizerUpdateArgs<T> args{};
  if (kind == "sgd") {
    args.kind = OptimizerKind::sgd;
  } else if (kind == "adam") {
    args.kind = OptimizerKind::adam;
  } else if (kind == "adagrad") {
    args.kind = OptimizerKind::adagrad;
  } else if (kind == "rmsprop") {
    args.kind = OptimizerKind::rmsprop;
  } else if (kind == "nadam") {
    args.kind = OptimizerKind::nadam;
  } else if (kind == "adamax") {
    args.kind = OptimizerKind::adamax;
  } else if (kind == "lion") {
    args.kind = OptimizerKind::lion;
  } else if (kind == "adadelta") {
    args.kind = OptimizerKind::adadelta;
  } else if (kind == "ftrl") {
    args.kind = OptimizerKind::ftrl;
  } else {
    throw py::value_error("unknown optimizer kind '" + kind + "'");
  }
  args.n = w.rows;
  args.g = g.data;
  args.w = w.data;
  if (state_list.size() > 3) throw py::value_error("at most 3 state arrays");
  for (std::size_t i = 0; i < state_list.size(); ++i) {
    if (state_list[i].is_none()) continue;
    const auto arr = state_list[i].cast<py::array>();
    const auto s = contiguous<T>(arr, "state", 1);
    if (s.rows != w.rows || !arr.writeable())
      throw py::value_error("each state array must be writable and as long as w");
    args.state[i] = s.data;
  }
  auto num = [&](const char* key, double fallback) {
    return h.contains(key) ? h[key].cast<double>() : fallback;
  };
  auto flag = [&](const char* key) { return h.contains(key) && h[key].cast<bool>(); };
  args.learning_rate = T(num("learning_rate", 0.01));
  args.grad_scale = T(num("grad_scale", 1.0));
  args.clip_value = T(num("clip_value", std::numeric_limits<double>::infinity()));
  args.decay = T(num("decay", 0.0));
  args.momentum = T(num("momentum", 0.0));
  args.nesterov = flag("nesterov");
  args.beta_1 = T(num("beta_1", 0.9));
  args.beta_2 = T(num("beta_2", 0.999));
  args.epsilon = T(num("epsilon", 1e-7));
  args.amsgrad = flag("amsgrad");
  args.rho = T(num("rho", 0.9));
  args.centered = flag("centered");
  args.m_coef = T(num("m_coef", 0.0));
  args.g_coef = T(num("g_coef", 0.0));
  args.v_coef = T(num("v_coef", 0.0));
  args.lr_power = T(num("lr_power", -0.5));
  args.l1 = T(num("l1", 0.0));
  args.l2 = T(num("l2", 0.0));
  args.l2_shrinkage = T(num("l2_shrinkage", 0.0));
  const bool needs[9][3] = {{args.momentum != T(0), false, false},
                            {true, true, args.amsgrad},
                            {true, false, false},
                            {true, args.centered, args.momentum > T(0)},
                            {true, true, false},
                            {true, true, false},
                            {true, false, false},
                            {true, true, false},
                            {true, true, false}};
  for (int i = 0; i < 3; ++i)
    if (needs[int(args.kind)][i] && args.state[i] == nullptr)
      throw py::value_error("optimizer '" + kind + "' needs state array " + std::to_string(i));
  py::gil_scoped_release release;
  kernels<T>().optimizer_update(args);
}

template <class T>
double sum_squares(const py::array& x_arr) {
  const auto x = contiguous<T>(x_arr, "x", 1);
  py::gil_scoped_release release;
  return kernels<T>().sum_squares(x.rows, x.data);
}

// Without g: the penalty l1 * sum |w| + l2 * sum w^2. With g: a copy of g plus the penalty's
// gradient (g itself is left as it was).
template <class T>
py::object regularize(const py::array& w_arr, double l1, double l2, const py::object& g_obj) {
  const auto w = contiguous<T>(w_arr, "w", 1);
  const KernelTable<T>& k = kernels<T>();
  if (g_obj.is_none()) {
    double penalty;
    {
      py::gil_scoped_release release;
      penalty = k.regularize(w.rows, T(l1), T(l2), w.data, nullptr);
    }
    return py::float_(penalty);
  }
  const auto g = contiguous<T>(g_obj.cast<py::array>(), "g", 1);
  if (g.rows != w.rows) throw py::value_error("g must have w's shape");
  py::array_t<T> out(py::ssize_t(g.rows));
  std::copy(g.data, g.data + g.rows, out.mutable_data());
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    k.regularize(w.rows, T(l1), T(l2), w.data, o);
  }
  return std::move(out);
}

template <class T>
py::object nonzero_indices(const py::array& x_arr, bool values, bool non_finite) {
  const auto x = contiguous<T>(x_arr, "x", 1);
  std::vector<std::uint32_t> idx(x.rows + 8);  // the kernels' slack
  std::vector<T> vals(values ? x.rows + 8 : 0);
  std::size_t count;
  bool seen = false;
  {
    py::gil_scoped_release release;
    count = kernels<T>().nonzero_indices(x.rows, x.data, idx.data(), values ? vals.data() : nullptr, &seen);
  }
  py::array_t<std::uint32_t> out{py::ssize_t(count)};
  std::copy(idx.begin(), idx.begin() + std::ptrdiff_t(count), out.mutable_data());
  py::object result = out;
  if (values) {
    py::array_t<T> out_vals{py::ssize_t(count)};
    std::copy(vals.begin(), vals.begin() + std::ptrdiff_t(count), out_vals.mutable_data());
    result = py::make_tuple(out, out_vals);
  }
  if (non_finite) return py::make_tuple(result, seen);
  return result;
}

// (how many entries of x are nonzero, whether one is NaN or infinite): nonzero_indices without
// lists.
template <class T>
py::tuple count_nonzero(const py::array& x_arr) {
  const auto x = contiguous<T>(x_arr, "x", 1);
  std::size_t count;
  bool seen = false;
  {
    py::gil_scoped_release release;
    count = kernels<T>().nonzero_indices(x.rows, x.data, nullptr, nullptr, &seen);
  }
  return py::make_tuple(count, seen);
}

// C = op(A) @ B using lists of op(A)'s nonzero columns per row (starts, cols).
template <class T>
py::array sparse_gemm(const py::array& a_arr, const py::array& b_arr, const py::array& starts_arr,
                      const py::array& cols_arr, const std::string& values, const py::object& continue_from) {
  if (values != "a" && values != "list" && values != "entries")
    throw py::value_error("values must be 'a', 'list' or 'entries', got '" + values + "'");
  const auto a = strided<T>(a_arr, "a"), b = strided<T>(b_arr, "b", false, true);
  const auto starts = contiguous<std::uint32_t>(starts_arr, "starts", 1);
  const auto cols = contiguous<std::uint32_t>(cols_arr, "cols", 1);
  if (a.cols != b.rows) throw py::value_error("a and b do not chain");
  if (starts.rows != a.rows + 1 || starts.data[0] != 0 || starts.data[a.rows] != cols.rows)
    throw py::value_error("starts must have rows + 1 entries from 0 to len(cols)");
  for (std::size_t r = 0; r < a.rows; ++r) {
    if (starts.data[r + 1] < starts.data[r]) throw py::value_error("starts must not decrease");
    for (std::uint32_t e = starts.data[r]; e < starts.data[r + 1]; ++e)
      if (cols.data[e] >= a.cols || (e > starts.data[r] && cols.data[e] <= cols.data[e - 1]))
        throw py::value_error("cols must increase within a row and lie in [0, a.shape[1])");
  }
  auto c = new_matrix<T>(a.rows, b.cols);
  T* out = c.mutable_data();
  // continue_from: the chains start from these values (the product of earlier entries).
  if (!continue_from.is_none()) {
    const auto from = strided<T>(continue_from.cast<py::array>(), "continue_from");
    if (from.rows != a.rows || from.cols != b.cols) throw py::value_error("continue_from must have the shape of the product");
    for (std::size_t r = 0; r < a.rows; ++r)
      for (std::size_t j = 0; j < b.cols; ++j) out[r * b.cols + j] = from.data[std::ptrdiff_t(r) * from.rs + std::ptrdiff_t(j) * from.cs];
  }
  // The lists carry their values (copied from a here), as the training lists do: in an array
  // beside cols ("list") or in (index, value) entries ("entries").
  std::vector<T> vals;
  std::vector<SparseEntry<T>> entries;
  if (values != "a") {
    vals.resize(cols.rows);
    for (std::size_t r = 0; r < a.rows; ++r)
      for (std::uint32_t e = starts.data[r]; e < starts.data[r + 1]; ++e)
        vals[e] = a.data[std::ptrdiff_t(r) * a.rs + std::ptrdiff_t(cols.data[e]) * a.cs];
  }
  if (values == "entries") {
    entries.resize(cols.rows);
    for (std::size_t e = 0; e < cols.rows; ++e) entries[e] = {cols.data[e], vals[e]};
  }
  py::gil_scoped_release release;
  SparseGemmArgs<T> args{a.rows, b.cols, a.data, a.rs, a.cs, starts.data, starts.data + 1,
                         cols.data, b.data, b.rs, out, std::ptrdiff_t(b.cols)};
  if (values == "list") args.vals = vals.data();
  if (values == "entries") args.entries = entries.data();
  args.continue_chain = !continue_from.is_none();
  kernels<T>().sparse_gemm(args);
  return c;
}

// Picks the float or double instantiation from the first array's dtype.
template <class F32, class F64>
auto by_dtype(const py::array& first, F32 f32, F64 f64) {
  if (first.dtype().is(py::dtype::of<float>())) return f32();
  if (first.dtype().is(py::dtype::of<double>())) return f64();
  throw py::type_error("kernels take float32 or float64 arrays, got " +
                       std::string(py::str(first.dtype())));
}

}  // namespace

void bind_kernels(py::module_& parent) {
  py::module_ m = parent.def_submodule("kernels", "The active ISA's kernels, for tests.");
  m.def(
      "gemm",
      [](const py::array& a, const py::array& b, py::object c, double alpha, double beta, const py::object& bias,
         bool relu, const py::object& positive, bool column_sums, const py::object& update, double learning_rate) {
        return by_dtype(a, [&] { return gemm<float>(a, b, c, alpha, beta, bias, relu, positive, column_sums, update, learning_rate); },
                        [&] { return gemm<double>(a, b, c, alpha, beta, bias, relu, positive, column_sums, update, learning_rate); });
      },
      py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("alpha") = 1.0,
      py::arg("beta") = 0.0, py::kw_only(), py::arg("bias") = py::none(), py::arg("relu") = false,
      py::arg("positive") = py::none(), py::arg("column_sums") = false, py::arg("update") = py::none(),
      py::arg("learning_rate") = 0.0,
      "c = alpha * a @ b + beta * c (c allocated when None), then the epilogue: c += bias (per column), "
      "c = max(0, c) when relu, c = 0 where positive <= 0, update -= learning_rate * c in place (c "
      "then unspecified); returns c, or (c, the sums of c's columns) when column_sums.");
  m.def(
      "bias_activation",
      [](const py::array& z, py::object bias, const std::string& act, py::object a, py::object alpha) {
        return by_dtype(z, [&] { return bias_activation<float>(z, bias, act, a, alpha); },
                        [&] { return bias_activation<double>(z, bias, act, a, alpha); });
      },
      py::arg("z"), py::arg("bias"), py::arg("activation"), py::arg("a") = py::none(),
      py::arg("alpha") = py::none(),
      "z += bias in place; returns a = act(z) (into `a` when given).");
  m.def(
      "activation_backward",
      [](const std::string& act, const py::array& z, const py::array& a, const py::array& da,
         py::object alpha) {
        return by_dtype(z, [&] { return activation_backward<float>(act, z, a, da, alpha); },
                        [&] { return activation_backward<double>(act, z, a, da, alpha); });
      },
      py::arg("activation"), py::arg("z"), py::arg("a"), py::arg("da"), py::arg("alpha") = py::none());
  m.def(
      "loss",
      [](const std::string& name, bool from_logits, const py::array& pred, const py::array& y,
         py::object w, double scale, double delta) {
        return by_dtype(pred, [&] { return loss<float>(name, from_logits, pred, y, w, scale, delta); },
                        [&] { return loss<double>(name, from_logits, pred, y, w, scale, delta); });
      },
      py::arg("name"), py::arg("from_logits"), py::arg("pred"), py::arg("y"),
      py::arg("row_weight") = py::none(), py::arg("grad_scale") = 1.0, py::arg("delta") = kHuberDelta,
      "Returns (weighted loss sum, per-row losses, gradient * grad_scale).");
  m.def(
      "sgd_forward",
      [](const py::array& w, const py::array& update_x, bool update_skips_zeros, const py::array& delta,
         double learning_rate, const py::array& next_x, bool next_skips_zeros) {
        return by_dtype(
            w, [&] { return sgd_forward<float>(w, update_x, update_skips_zeros, delta, learning_rate, next_x, next_skips_zeros); },
            [&] { return sgd_forward<double>(w, update_x, update_skips_zeros, delta, learning_rate, next_x, next_skips_zeros); });
      },
      py::arg("w"), py::arg("update_x"), py::arg("update_skips_zeros"), py::arg("delta"), py::arg("learning_rate"),
      py::arg("next_x"), py::arg("next_skips_zeros"),
      "w[k] -= lr * update_x[k] * delta (listed k), then returns next_x @ w (listed k), in one pass.");
  m.def(
      "column_sum",
      [](const py::array& x) {
        return by_dtype(x, [&] { return column_sum<float>(x); }, [&] { return column_sum<double>(x); });
      },
      py::arg("x"));
  m.def(
      "batch_norm",
      [](const py::array& x, const py::object& gamma, const py::object& beta, double epsilon, const py::object& mean,
         const py::object& variance) {
        return by_dtype(x, [&] { return batch_norm<float>(x, gamma, beta, epsilon, mean, variance); },
                        [&] { return batch_norm<double>(x, gamma, beta, epsilon, mean, variance); });
      },
      py::arg("x"), py::arg("gamma") = py::none(), py::arg("beta") = py::none(), py::arg("epsilon") = 1e-3,
      py::arg("mean") = py::none(), py::arg("variance") = py::none(),
      "Returns (y, mean, variance): with mean and variance None, the batch's (biased) statistics.");
  m.def(
      "batch_norm_backward",
      [](const py::array& x, const py::array& mean, const py::array& variance, const py::array& delta,
         const py::object& gamma, double epsilon, bool batch_stats) {
        return by_dtype(x, [&] { return batch_norm_backward<float>(x, mean, variance, delta, gamma, epsilon, batch_stats); },
                        [&] { return batch_norm_backward<double>(x, mean, variance, delta, gamma, epsilon, batch_stats); });
      },
      py::arg("x"), py::arg("mean"), py::arg("variance"), py::arg("delta"), py::arg("gamma") = py::none(),
      py::arg("epsilon") = 1e-3, py::arg("batch_stats") = true, "Returns (dx, dgamma, dbeta).");
  m.def(
      "sgd_update",
      [](const py::array& w, const py::array& g, double lr) {
        py::dict h;
        h["learning_rate"] = lr;
        by_dtype(w, [&] { optimizer_update<float>("sgd", w, g, py::list(), h); },
                 [&] { optimizer_update<double>("sgd", w, g, py::list(), h); });
      },
      py::arg("w"), py::arg("g"), py::arg("learning_rate"), "w -= learning_rate * g, in place.");
  m.def(
      "optimizer_update",
      [](const std::string& kind, const py::array& w, const py::array& g, const py::list& state,
         const py::dict& hyper) {
        by_dtype(w, [&] { optimizer_update<float>(kind, w, g, state, hyper); },
                 [&] { optimizer_update<double>(kind, w, g, state, hyper); });
      },
      py::arg("kind"), py::arg("w"), py::arg("g"), py::arg("state"), py::arg("hyper"),
      "One optimizer step in place on w and the state arrays (see kernels.h for the formulas). "
      "hyper: learning_rate, grad_scale, clip_value, decay, momentum, nesterov, beta_1, beta_2, "
      "epsilon, amsgrad, rho, centered.");
  m.def(
      "nonzero_indices",
      [](const py::array& x, bool values, bool non_finite) {
        return by_dtype(x, [&] { return nonzero_indices<float>(x, values, non_finite); },
                        [&] { return nonzero_indices<double>(x, values, non_finite); });
      },
      py::arg("x"), py::arg("values") = false, py::arg("non_finite") = false,
      "Indices of the nonzero entries of a 1-D array, increasing (uint32); with values=True, "
      "(indices, the entries' values); with non_finite=True, (that, whether x holds NaN or inf).");
  m.def(
      "count_nonzero",
      [](const py::array& x) {
        return by_dtype(x, [&] { return count_nonzero<float>(x); }, [&] { return count_nonzero<double>(x); });
      },
      py::arg("x"), "(number of nonzero entries of a 1-D array, whether one is NaN or infinite).");
  m.def(
      "sparse_gemm",
      [](const py::array& a, const py::array& b, const py::array& starts, const py::array& cols,
         const std::string& values, const py::object& continue_from) {
        return by_dtype(a, [&] { return sparse_gemm<float>(a, b, starts, cols, values, continue_from); },
                        [&] { return sparse_gemm<double>(a, b, starts, cols, values, continue_from); });
      },
      py::arg("a"), py::arg("b"), py::arg("starts"), py::arg("cols"), py::arg("values") = "a",
      py::arg("continue_from") = py::none(),
      "a @ b reading only the listed entries of a (row r: cols[starts[r]:starts[r+1]]); a may "
      "be any strided view (a transposed batch gives the kernel-gradient form). values: where "
      "the kernel reads each entry's value: 'a' (from a), 'list' (an array beside cols) or "
      "'entries' ((index, value) pairs in place of cols). "
      "continue_from: each element's chain starts from this array's value instead of 0.");
  m.def(
      "regularize",
      [](const py::array& w, double l1, double l2, const py::object& g) {
        return by_dtype(w, [&] { return regularize<float>(w, l1, l2, g); }, [&] { return regularize<double>(w, l1, l2, g); });
      },
      py::arg("w"), py::arg("l1"), py::arg("l2"), py::arg("g") = py::none(),
      "Keras's L1L2 penalty of w (l1 and l2 rounded to w's dtype); with g, g plus its gradient "
      "l1 * sign(w) + 2 * l2 * w (a new array).");
  m.def(
      "sum_squares",
      [](const py::array& x) {
        return by_dtype(x, [&] { return sum_squares<float>(x); }, [&] { return sum_squares<double>(x); });
      },
      py::arg("x"));
}

}  // namespace fastmlp::bindings
