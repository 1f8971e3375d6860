// Optimizers: the state they keep per parameter array, learning-rate schedules and gradient
// clipping, with Keras 3's definitions. The elementwise update itself is one kernel pass
// (KernelTable::optimizer_update).
#pragma once

#include <string>
#include <vector>

#include "fastmlp/aligned_buffer.h"
#include "fastmlp/kernels.h"
#include "fastmlp/network.h"

namespace fastmlp {

enum class ScheduleKind : int {
  constant = 0,
  exponential_decay = 1,
  piecewise_constant_decay = 2,
  inverse_time_decay = 3,
  cosine_decay = 4,
  // One rate per step for the steps [first_step, first_step + values.size()): a schedule the
  // core cannot evaluate (a Python LearningRateSchedule subclass), evaluated by Python for a
  // chunk's steps before the chunk runs.
  per_step = 5,
};

// The learning rate as a function of the optimizer's step count (Keras's
// keras.optimizers.schedules formulas; evaluated with the step before it is incremented).
struct LearningRateSchedule {
  ScheduleKind kind = ScheduleKind::constant;
  double initial_learning_rate = 0.01;
  double decay_steps = 1.0;
  double decay_rate = 0.0;
  bool staircase = false;
  std::vector<double> boundaries, values;  // piecewise constant
  double alpha = 0.0;                       // cosine: final fraction of the rate
  bool warmup = false;                      // cosine: linear warmup to warmup_target first
  double warmup_target = 0.0;
  double warmup_steps = 0.0;
  long long first_step = 0;                 // per_step: the step of values[0]

  double at(long long step) const;
  void validate() const;
};

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  LearningRateSchedule learning_rate;
  double momentum = 0.0;
  bool nesterov = false;
  double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7;
  bool amsgrad = false;
  double weight_decay = 0.0;  // decoupled (AdamW style); 0 = none
  double initial_accumulator_value = 0.1;
  double rho = 0.9;
  bool centered = false;
  double clipnorm = 0.0, clipvalue = 0.0, global_clipnorm = 0.0;  // 0 = off
  // Ftrl (Keras's names): initial_accumulator_value above is its accumulator's start too.
  double learning_rate_power = -0.5, l1_regularization_strength = 0.0, l2_regularization_strength = 0.0,
         l2_shrinkage_regularization_strength = 0.0, beta = 0.0;

  void validate() const;
};

// One parameter array and its gradient, inside a Network (stable for the network's lifetime).
template <class T>
struct ParamRef {
  T* w;
  T* g;
  std::size_t n;
  std::size_t layer;  // the network layer it belongs to
  bool norm = false;  // its batch normalization's gamma or beta (frozen by norm_trainable)
  bool input_norm = false;  // with norm: its input batch normalization's (input_norm_trainable)
};

template <class T>
class Optimizer {
 public:
  // Updates the parameters of `net`, which must outlive the optimizer.
  Optimizer(OptimizerConfig config, Network<T>& net);
  const OptimizerConfig& config() const { return config_; }
  // Replaces the schedule by a constant rate (what callbacks such as ReduceLROnPlateau do).
  void set_learning_rate(double lr);
  // The rates of the steps [first_step, first_step + rates.size()) (a per_step schedule); a step
  // outside that range takes the nearest rate given.
  void set_learning_rates(long long first_step, std::vector<double> rates);
  double current_learning_rate() const { return config_.learning_rate.at(iterations_); }
  long long iterations() const { return iterations_; }
  void set_iterations(long long n) { iterations_ = n; }
  // Applies the gradients held by the network to the parameters of its trainable layers, then
  // counts one step. With first_kernel_done the first layer's kernel was already updated (fused
  // plain SGD). Frozen layers are skipped: their weights and slots stay as they are, and their
  // gradients join no global norm (Keras's optimizer sees only trainable variables).
  void apply(bool first_kernel_done = false);
  // Plain SGD: w -= lr * g and nothing else, which the sparse first layer can fuse.
  bool is_plain_sgd() const;

  // The state arrays, parameter by parameter (kernel, bias, per layer), slot by slot, for saving.
  std::vector<AlignedBuffer<T>*> state_buffers();
  // For each of state_buffers(): whether its values are sums or maxima of squares or of |g|
  // (Adam's v and vhat, Adagrad's and Adadelta's accumulators, ...), which are never negative;
  // a restored state is checked against it (a negative one would train to NaN).
  std::vector<bool> state_non_negative() const;

 private:
  struct Slots {
    AlignedBuffer<T> s[3];
  };
  OptimizerConfig config_;
  long long iterations_ = 0;
  const Network<T>* net_;  // for each layer's trainable flag, read at every step
  std::vector<ParamRef<T>> params_;
  std::vector<Slots> slots_;  // one per parameter array
  // Nadam's product of u_1 ... u_t (Keras's u_product variable), a function of the step count:
  // cached for step u_product_step_, recomputed from 1 when the count was set to another value.
  double u_product_ = 1.0;
  long long u_product_step_ = 0;
  double nadam_u_product(long long t);
  bool trains(const ParamRef<T>& p) const {
    const LayerSpec& spec = net_->spec(p.layer);
    return p.input_norm ? spec.input_norm_trainable : p.norm ? spec.norm_trainable : spec.trainable;
  }
};

}  // namespace fastmlp
