#include "optimizer_config.h"

#include <pybind11/stl.h>

#include <string>

namespace fastmlp::bindings {

namespace py = pybind11;

namespace {

template <class V>
V get_or(const py::dict& d, const char* key, V fallback) {
  if (!d.contains(key) || d[key].is_none()) return fallback;
  return d[key].cast<V>();
}

LearningRateSchedule schedule_from(const py::handle& value) {
  LearningRateSchedule s;
  if (!py::isinstance<py::dict>(value)) {
    s.initial_learning_rate = value.cast<double>();
    return s;
  }
  const auto d = value.cast<py::dict>();
  const auto kind = d["kind"].cast<std::string>();
  s.initial_learning_rate = get_or(d, "initial_learning_rate", 0.0);
  s.decay_steps = get_or(d, "decay_steps", 1.0);
  s.decay_rate = get_or(d, "decay_rate", 0.0);
  s.staircase = get_or(d, "staircase", false);
  if (kind == "exponential_decay") {
    s.kind = ScheduleKind::exponential_decay;
  } else if (kind == "inverse_time_decay") {
    s.kind = ScheduleKind::inverse_time_decay;
  } else if (kind == "piecewise_constant_decay") {
    s.kind = ScheduleKind::piecewise_constant_decay;
    s.boundaries = d["boundaries"].cast<std::vector<double>>();
    s.values = d["values"].cast<std::vector<double>>();
  } else if (kind == "cosine_decay") {
    s.kind = ScheduleKind::cosine_decay;
    s.alpha = get_or(d, "alpha", 0.0);
    if (d.contains("warmup_target") && !d["warmup_target"].is_none()) {
      s.warmup = true;
      s.warmup_target = d["warmup_target"].cast<double>();
      s.warmup_steps = get_or(d, "warmup_steps", 0.0);
    }
  } else {
    throw py::value_error("unknown learning-rate schedule '" + kind + "'");
  }
  return s;
}

}  // namespace

OptimizerConfig optimizer_config_from(const py::dict& d) {
  OptimizerConfig c;
  const auto name = d["name"].cast<std::string>();
  if (name == "sgd") {
    c.kind = OptimizerKind::sgd;
  } else if (name == "adam" || name == "adamw") {
    c.kind = OptimizerKind::adam;
  } else if (name == "adagrad") {
    c.kind = OptimizerKind::adagrad;
  } else if (name == "rmsprop") {
    c.kind = OptimizerKind::rmsprop;
  } else if (name == "nadam") {
    c.kind = OptimizerKind::nadam;
  } else if (name == "adamax") {
    c.kind = OptimizerKind::adamax;
  } else if (name == "lion") {
    c.kind = OptimizerKind::lion;
  } else if (name == "adadelta") {
    c.kind = OptimizerKind::adadelta;
  } else if (name == "ftrl") {
    c.kind = OptimizerKind::ftrl;
  } else {
    throw py::value_error("unknown optimizer '" + name + "'");
  }
  c.learning_rate = schedule_from(d["learning_rate"]);
  c.momentum = get_or(d, "momentum", 0.0);
  c.nesterov = get_or(d, "nesterov", false);
  c.beta_1 = get_or(d, "beta_1", 0.9);
  c.beta_2 = get_or(d, "beta_2", c.kind == OptimizerKind::lion ? 0.99 : 0.999);
  c.epsilon = get_or(d, "epsilon", 1e-7);
  c.amsgrad = get_or(d, "amsgrad", false);
  c.weight_decay = get_or(d, "weight_decay", 0.0);
  c.initial_accumulator_value = get_or(d, "initial_accumulator_value", 0.1);
  c.rho = get_or(d, "rho", c.kind == OptimizerKind::adadelta ? 0.95 : 0.9);
  c.learning_rate_power = get_or(d, "learning_rate_power", -0.5);
  c.l1_regularization_strength = get_or(d, "l1_regularization_strength", 0.0);
  c.l2_regularization_strength = get_or(d, "l2_regularization_strength", 0.0);
  c.l2_shrinkage_regularization_strength = get_or(d, "l2_shrinkage_regularization_strength", 0.0);
  c.beta = get_or(d, "beta", 0.0);
  c.centered = get_or(d, "centered", false);
  c.clipnorm = get_or(d, "clipnorm", 0.0);
  c.clipvalue = get_or(d, "clipvalue", 0.0);
  c.global_clipnorm = get_or(d, "global_clipnorm", 0.0);
  c.validate();
  return c;
}

}  // namespace fastmlp::bindings
