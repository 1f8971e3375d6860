#include "fastmlp/optimizer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "fastmlp/dispatch.h"
#include "fastmlp/sizes.h"
#include "fastmlp/thread_pool.h"

namespace fastmlp {

namespace {

// The parameter arrays of a network, in Keras's get_weights order (a Dense layer's input batch
// normalization's gamma and beta, its kernel and bias, then its batch normalization's gamma and
// beta).
template <class T>
std::vector<ParamRef<T>> params_of(Network<T>& net) {
  std::vector<ParamRef<T>> refs;
  for (std::size_t l = 0; l < net.num_layers(); ++l) {
    if (net.input_gamma(l) != nullptr)
      refs.push_back({net.input_gamma(l), net.input_gamma_grad(l), net.fan_in(l), l, true, true});
    if (net.input_beta(l) != nullptr)
      refs.push_back({net.input_beta(l), net.input_beta_grad(l), net.fan_in(l), l, true, true});
    refs.push_back({net.kernel(l), net.kernel_grad(l), net.fan_in(l) * net.spec(l).units, l});
    if (net.spec(l).use_bias) refs.push_back({net.bias(l), net.bias_grad(l), net.spec(l).units, l});
    if (net.gamma(l) != nullptr) refs.push_back({net.gamma(l), net.gamma_grad(l), net.spec(l).units, l, true});
    if (net.beta(l) != nullptr) refs.push_back({net.beta(l), net.beta_grad(l), net.spec(l).units, l, true});
  }
  return refs;
}

// Which state slots an optimizer keeps (see OptimizerUpdateArgs for their meaning).
std::array<bool, 3> slots_used(const OptimizerConfig& c) {
  switch (c.kind) {
    case OptimizerKind::sgd:
      return {c.momentum != 0.0, false, false};
    case OptimizerKind::adam:
      return {true, true, c.amsgrad};
    case OptimizerKind::adagrad:
      return {true, false, false};
    case OptimizerKind::rmsprop:
      return {true, c.centered, c.momentum > 0.0};
    case OptimizerKind::nadam:
    case OptimizerKind::adamax:
    case OptimizerKind::adadelta:
    case OptimizerKind::ftrl:
      return {true, true, false};
    case OptimizerKind::lion:
      return {true, false, false};
  }
  return {false, false, false};
}

// Arrays shorter than this are updated by one thread (a wake-up costs more than the work).
constexpr std::size_t kMinParallelElements = 1 << 15;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

double LearningRateSchedule::at(long long step_count) const {
  const double step = double(step_count);
  switch (kind) {
    case ScheduleKind::constant:
      return initial_learning_rate;
    case ScheduleKind::exponential_decay: {
      double p = step / decay_steps;
      if (staircase) p = std::floor(p);
      return initial_learning_rate * std::pow(decay_rate, p);
    }
    case ScheduleKind::inverse_time_decay: {
      double p = step / decay_steps;
      if (staircase) p = std::floor(p);
      return initial_learning_rate / (1.0 + decay_rate * p);
    }
    case ScheduleKind::piecewise_constant_decay: {
      // values[i] while step <= boundaries[i] (and above all boundaries: the last value).
      for (std::size_t i = 0; i < boundaries.size(); ++i)
        if (step <= boundaries[i]) return values[i];
      return values.back();
    }
    case ScheduleKind::cosine_decay: {
      const double pi = 3.14159265358979323846;
      auto decay = [&](double s, double from) {
        const double cosine = 0.5 * (1.0 + std::cos(pi * (s / decay_steps)));
        return from * ((1.0 - alpha) * cosine + alpha);
      };
      if (!warmup) return decay(std::min(step, decay_steps), initial_learning_rate);
      const double s = std::min(step, decay_steps + warmup_steps);
      if (s < warmup_steps)
        return (warmup_target - initial_learning_rate) * (s / warmup_steps) + initial_learning_rate;
      return decay(s - warmup_steps, warmup_target);
    }
    case ScheduleKind::per_step: {
      // validate() keeps values non-empty; a step outside the table takes its nearest entry.
      const long long last = (long long)(values.size()) - 1;
      const long long index = std::min(std::max(step_count - first_step, 0LL), last);
      return values[std::size_t(index)];
    }
  }
  return initial_learning_rate;
}

void LearningRateSchedule::validate() const {
  require(std::isfinite(initial_learning_rate) && initial_learning_rate >= 0,
          "learning_rate must be a finite number >= 0");
  if (kind == ScheduleKind::exponential_decay || kind == ScheduleKind::inverse_time_decay ||
      kind == ScheduleKind::cosine_decay)
    require(decay_steps > 0, "decay_steps must be > 0");
  if (kind == ScheduleKind::piecewise_constant_decay) {
    require(values.size() == boundaries.size() + 1,
            "values must have exactly one more entry than boundaries");
    for (std::size_t i = 1; i < boundaries.size(); ++i)
      require(boundaries[i] > boundaries[i - 1], "boundaries must increase");
  }
  if (kind == ScheduleKind::per_step) {
    require(!values.empty(), "a per-step schedule needs at least one rate");
    for (double v : values) require(std::isfinite(v) && v >= 0, "learning rates must be finite numbers >= 0");
  }
  if (kind == ScheduleKind::cosine_decay && warmup) require(warmup_steps > 0, "warmup_steps must be > 0");
}

void OptimizerConfig::validate() const {
  learning_rate.validate();
  require(momentum >= 0 && momentum <= 1, "momentum must be in [0, 1]");
  if (kind == OptimizerKind::lion) {
    require(beta_1 > 0 && beta_1 <= 1, "beta_1 must be in (0, 1]");
    require(beta_2 >= 0 && beta_2 <= 1, "beta_2 must be in [0, 1]");
  } else {
    require(beta_1 >= 0 && beta_1 < 1 && beta_2 >= 0 && beta_2 < 1, "beta_1 and beta_2 must be in [0, 1)");
  }
  require(learning_rate_power <= 0, "learning_rate_power must be <= 0");
  require(l1_regularization_strength >= 0 && l2_regularization_strength >= 0 &&
              l2_shrinkage_regularization_strength >= 0,
          "the regularization strengths must be >= 0");
  require(std::isfinite(beta) && beta >= 0, "beta must be a finite number >= 0");
  require(epsilon >= 0, "epsilon must be >= 0");
  require(rho >= 0 && rho <= 1, "rho must be in [0, 1]");
  require(weight_decay >= 0, "weight_decay must be >= 0");
  require(initial_accumulator_value >= 0, "initial_accumulator_value must be >= 0");
  require(clipnorm >= 0 && clipvalue >= 0 && global_clipnorm >= 0, "clipping thresholds must be >= 0");
  require(int(clipnorm > 0) + int(clipvalue > 0) + int(global_clipnorm > 0) <= 1,
          "only one of clipnorm, clipvalue and global_clipnorm can be set");
}

template <class T>
Optimizer<T>::Optimizer(OptimizerConfig config, Network<T>& net)
    : config_(std::move(config)), net_(&net), params_(params_of(net)) {
  config_.validate();
  const std::array<bool, 3> used = slots_used(config_);
  const std::size_t per_value = std::size_t(used[0]) + std::size_t(used[1]) + std::size_t(used[2]);
  // The parameters fit in memory (the network holds them): the slots are at most 3 times that.
  std::size_t values = 0;
  for (const ParamRef<T>& p : params_) values += p.n;
  with_context([&] { return "the optimizer's state (" + std::to_string(per_value) + " slots per parameter)"; }, -1,
               [&] {
                 require_memory(checked_bytes(checked_mul(values, per_value, "slot values"), sizeof(T)));
                 reserve_checked(slots_, params_.size());
               });
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ParamRef<T>& p = params_[i];
    const std::size_t l = p.layer;
    Slots s;
    with_context(
        [&] { return "layer " + std::to_string(l) + "'s optimizer state (" + std::to_string(p.n) + " values per slot)"; },
        long(l), [&] {
          for (int k = 0; k < 3; ++k)
            if (used[k]) s.s[k].resize(p.n);
        });
    if (config_.kind == OptimizerKind::adagrad || config_.kind == OptimizerKind::ftrl)
      std::fill(s.s[0].data(), s.s[0].data() + p.n, T(config_.initial_accumulator_value));
    slots_.push_back(std::move(s));
  }
}

template <class T>
void Optimizer<T>::set_learning_rate(double lr) {
  LearningRateSchedule constant;
  constant.initial_learning_rate = lr;
  constant.validate();
  config_.learning_rate = constant;
}

template <class T>
void Optimizer<T>::set_learning_rates(long long first_step, std::vector<double> rates) {
  LearningRateSchedule table;
  table.kind = ScheduleKind::per_step;
  table.first_step = first_step;
  table.values = std::move(rates);
  table.validate();
  config_.learning_rate = std::move(table);
}

// Which state slots hold values that are never negative (see OptimizerUpdateArgs).
std::array<bool, 3> slots_non_negative(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::adam:  // v, vhat
    case OptimizerKind::nadam:  // v
    case OptimizerKind::adamax:  // u = max(beta_2 u, |g|)
      return {false, true, true};
    case OptimizerKind::adagrad:  // acc
    case OptimizerKind::rmsprop:  // vel (avg and mom take any sign)
    case OptimizerKind::ftrl:  // n (z takes any sign)
      return {true, false, false};
    case OptimizerKind::adadelta:  // acc_g, acc_d
      return {true, true, false};
    case OptimizerKind::sgd:
    case OptimizerKind::lion:
      return {false, false, false};
  }
  return {false, false, false};
}

template <class T>
std::vector<bool> Optimizer<T>::state_non_negative() const {
  const std::array<bool, 3> non_negative = slots_non_negative(config_.kind);
  std::vector<bool> out;
  for (const Slots& s : slots_)
    for (int i = 0; i < 3; ++i)
      if (s.s[i].size() != 0) out.push_back(non_negative[i]);
  return out;
}

template <class T>
std::vector<AlignedBuffer<T>*> Optimizer<T>::state_buffers() {
  std::vector<AlignedBuffer<T>*> out;
  for (Slots& s : slots_)
    for (auto& b : s.s)
      if (b.size() != 0) out.push_back(&b);
  return out;
}

template <class T>
double Optimizer<T>::nadam_u_product(long long t) {
  const double beta_1 = config_.beta_1;
  if (u_product_step_ > t) {
    u_product_ = 1.0;
    u_product_step_ = 0;
  }
  for (; u_product_step_ < t; ++u_product_step_)
    u_product_ *= beta_1 * (1.0 - 0.5 * std::pow(0.96, double(u_product_step_ + 1)));
  return u_product_;
}

template <class T>
bool Optimizer<T>::is_plain_sgd() const {
  const OptimizerConfig& c = config_;
  return c.kind == OptimizerKind::sgd && c.momentum == 0.0 && c.weight_decay == 0.0 &&
         c.clipnorm == 0.0 && c.clipvalue == 0.0 && c.global_clipnorm == 0.0;
}

template <class T>
void Optimizer<T>::apply(bool first_kernel_done) {
  const KernelTable<T>& k = kernels<T>();
  const OptimizerConfig& c = config_;
  const double lr = c.learning_rate.at(iterations_);
  double rate = lr;
  if (c.kind == OptimizerKind::adam) {
    const double t = double(iterations_ + 1);
    rate = lr * std::sqrt(1.0 - std::pow(c.beta_2, t)) / (1.0 - std::pow(c.beta_1, t));
  } else if (c.kind == OptimizerKind::adamax) {
    rate = lr / (1.0 - std::pow(c.beta_1, double(iterations_ + 1)));
  }
  // Nadam's momentum cache (keras/src/optimizers/nadam.py), t = iterations + 1:
  // u_t = beta_1 (1 - 0.5 * 0.96^t), m_hat = u_{t+1} m / (1 - prod u_1..u_{t+1})
  //                                          + (1 - u_t) g / (1 - prod u_1..u_t).
  double m_coef = 0, g_coef = 0, v_coef = 0;
  if (c.kind == OptimizerKind::nadam) {
    const double t = double(iterations_ + 1);
    const double u_t = c.beta_1 * (1.0 - 0.5 * std::pow(0.96, t));
    const double u_next = c.beta_1 * (1.0 - 0.5 * std::pow(0.96, t + 1.0));
    const double product = nadam_u_product(iterations_ + 1);
    m_coef = u_next / (1.0 - product * u_next);
    g_coef = (1.0 - u_t) / (1.0 - product);
    v_coef = 1.0 / (1.0 - std::pow(c.beta_2, t));
  }
  const std::vector<ParamRef<T>>& params = params_;
  double global_scale = 1.0;
  if (c.global_clipnorm > 0) {
    double sum = 0;
    for (const auto& p : params)
      if (trains(p)) sum += k.sum_squares(p.n, p.g);
    const double norm = std::sqrt(sum);
    global_scale = c.global_clipnorm * std::min(1.0 / norm, 1.0 / c.global_clipnorm);
  }
  for (std::size_t i = first_kernel_done ? 1 : 0; i < params.size(); ++i) {
    const ParamRef<T>& p = params[i];
    if (!trains(p)) continue;
    double scale = global_scale;
    if (c.clipnorm > 0) {
      const double norm = std::sqrt(k.sum_squares(p.n, p.g));
      scale = c.clipnorm / std::max(norm, c.clipnorm);
    }
    OptimizerUpdateArgs<T> args{};
    args.kind = c.kind;
    args.n = p.n;
    args.g = p.g;
    args.w = p.w;
    for (int s = 0; s < 3; ++s) args.state[s] = slots_[i].s[s].size() ? slots_[i].s[s].data() : nullptr;
    args.learning_rate = T(rate);
    args.grad_scale = T(scale);
    args.clip_value = c.clipvalue > 0 ? T(c.clipvalue) : std::numeric_limits<T>::infinity();
    args.decay = T(c.weight_decay * lr);
    args.momentum = T(c.momentum);
    args.nesterov = c.nesterov;
    args.beta_1 = T(c.beta_1);
    args.beta_2 = T(c.beta_2);
    args.epsilon = T(c.epsilon);
    args.amsgrad = c.amsgrad;
    args.rho = T(c.rho);
    args.centered = c.centered;
    args.m_coef = T(m_coef);
    args.g_coef = T(g_coef);
    args.v_coef = T(v_coef);
    args.lr_power = T(c.learning_rate_power);
    args.l1 = T(c.l1_regularization_strength);
    // Keras adds beta / (2 lr) to Ftrl's l2 at every step, with that step's rate.
    args.l2 = T(c.l2_regularization_strength + (c.kind == OptimizerKind::ftrl ? c.beta / (2.0 * lr) : 0.0));
    args.l2_shrinkage = T(c.l2_shrinkage_regularization_strength);
    // Elementwise: any split gives the same bits. Large arrays are shared between the threads.
    ThreadPool& pool = ThreadPool::instance();
    const std::size_t tasks = std::min(pool.num_threads(), std::max<std::size_t>(1, p.n / kMinParallelElements));
    if (tasks <= 1) {
      k.optimizer_update(args);
      continue;
    }
    const std::size_t step = (p.n / tasks + 15) / 16 * 16;
    pool.run(tasks, [&](std::size_t t) {
      const std::size_t begin = std::min(p.n, t * step), end = t + 1 == tasks ? p.n : std::min(p.n, begin + step);
      OptimizerUpdateArgs<T> part = args;
      part.n = end - begin;
      part.g = args.g + begin;
      part.w = args.w + begin;
      for (int s = 0; s < 3; ++s) part.state[s] = args.state[s] ? args.state[s] + begin : nullptr;
      if (part.n != 0) k.optimizer_update(part);
    });
  }
  ++iterations_;
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace fastmlp
