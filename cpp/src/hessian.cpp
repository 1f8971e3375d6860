// The R-operator pass (see hessian.h). For a block of B directions v, row r * B + b of every R
// array belongs to sample r of the current chunk and direction b, so each product of the pass is
// one GEMM over B n rows, and the gradients' R (a_{l-1}^T R{delta_l} for all b at once) one GEMM
// whose columns are (direction, unit) pairs. Forward, for each layer l (a_0 = x, R{a_0} = 0):
//   R{z_l} = R{a_{l-1}} W_l + a_{l-1} V_l + v_b,l          (V_l, v_b,l: v's part for W_l, b_l)
//   R{a_l} = f'(z_l) R{z_l}                                 (softmax: its Jacobian, row by row)
// the loss's R{g} = (its Hessian in its input) R{input}, then backward, from the output:
//   R{delta_l} = f''(z_l) R{z_l} da_l + f'(z_l) R{da_l}     (da_l = dL/da_l; softmax: its R)
//   R{dL/dW_l} = R{a_{l-1}}^T delta_l + a_{l-1}^T R{delta_l},  R{dL/db_l} = column sums
//   R{da_{l-1}} = R{delta_l} W_l^T + delta_l V_l^T
// which is H v: the row of H for a unit direction e_p (H is symmetric), where V_l is one 1, so
// its products are a column copy each, and whose pass ends at e_p's layer (the columns before
// it are in earlier rows). The loss is a sum over samples: a data set larger than
// the scratch is taken in chunks of rows whose contributions add up.
#include "fastmlp/hessian.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "curvature.h"
#include "fastmlp/dispatch.h"
#include "fastmlp/sizes.h"
#include "fastmlp/thread_pool.h"
#include "fastmlp/trainer.h"

namespace fastmlp {

namespace {

// Values of scratch one pass aims at (32 MiB of float64): it sets the rows per chunk and the
// directions per block; any choice gives the same H up to the order of the sums over chunks.
constexpr std::size_t kScratchValues = std::size_t(1) << 22;
// Rows per chunk at most: larger chunks only grow the scratch, the products are long already.
constexpr std::size_t kMaxChunkRows = 4096;
// Directions per block at most.
constexpr std::size_t kMaxBlock = 64;

using Buffer = AlignedBuffer<double>;

// C = A B (+ C when `accumulate`), one thread: the passes are parallel over blocks instead.
void gemm(std::size_t m, std::size_t n, std::size_t k, const double* a, std::ptrdiff_t a_row, std::ptrdiff_t a_col,
          const double* b, std::ptrdiff_t b_row, std::ptrdiff_t b_col, bool accumulate, double* c, std::ptrdiff_t ldc,
          double* pack) {
  kernels<double>().gemm({m, n, k, 1.0, a, a_row, a_col, b, b_row, b_col, accumulate ? 1.0 : 0.0, c, ldc, pack});
}

Buffer pack_buffer() { return Buffer(kernels<double>().gemm_pack_elements + 1); }

// Where flat weight p sits: layer, kernel (row i, column j) or bias (j).
struct Position {
  std::size_t layer;
  bool bias;
  std::size_t i, j;
};

// The network in float64, with the flat order of its weights.
struct Model {
  std::vector<std::size_t> dims;  // dims[0]: the inputs; dims[l + 1]: layer l's units
  std::vector<LayerSpec> specs;
  std::vector<Buffer> kernel, bias;
  std::vector<std::size_t> kernel_offset, bias_offset;
  std::size_t parameters = 0, unit_sum = 0, widest = 0;
  LossSpec loss;

  std::size_t layers() const { return specs.size(); }
  std::size_t in(std::size_t l) const { return dims[l]; }
  std::size_t out(std::size_t l) const { return dims[l + 1]; }

  Position locate(std::size_t p) const {
    std::size_t l = 0;
    while (l + 1 < layers() && kernel_offset[l + 1] <= p) ++l;
    if (p >= kernel_offset[l] + in(l) * out(l)) return {l, true, 0, p - bias_offset[l]};
    const std::size_t k = p - kernel_offset[l];
    return {l, false, k / out(l), k % out(l)};
  }

  // "layer 1's kernel[3, 0]", for messages.
  std::string describe(std::size_t p) const {
    const Position at = locate(p);
    const std::string layer = "layer " + std::to_string(at.layer) + "'s ";
    if (at.bias) return layer + "bias[" + std::to_string(at.j) + "]";
    return layer + "kernel[" + std::to_string(at.i) + ", " + std::to_string(at.j) + "]";
  }

  // The L2 penalty's curvature 2 l2 of weight p (the L1 penalty has none).
  double penalty_curvature(std::size_t p) const {
    const Position at = locate(p);
    const LayerSpec& s = specs[at.layer];
    return 2 * (at.bias ? s.bias_l2 : s.kernel_l2);
  }
};

template <class T>
Model model_of(Network<T>& net, const LossSpec& loss) {
  Model m;
  m.loss = loss;
  m.dims.push_back(net.input_dim());
  for (std::size_t l = 0; l < net.num_layers(); ++l) {
    const LayerSpec& s = net.spec(l);
    if (s.batch_norm || s.input_norm)
      throw std::invalid_argument("the Hessian of a network with batch normalization is not available (layer " +
                                  std::to_string(l) + ")");
    const std::size_t in = net.fan_in(l), out = s.units;
    m.specs.push_back(s);
    m.dims.push_back(out);
    m.kernel_offset.push_back(m.parameters);
    m.parameters += in * out;  // the network holds these arrays: no overflow
    m.bias_offset.push_back(m.parameters);
    if (s.use_bias) m.parameters += out;
    m.unit_sum += out;
    m.widest = std::max(m.widest, out);
    m.kernel.emplace_back(in * out);
    std::copy(net.kernel(l), net.kernel(l) + in * out, m.kernel.back().data());
    m.bias.emplace_back(s.use_bias ? out : 0);
    if (s.use_bias) std::copy(net.bias(l), net.bias(l) + out, m.bias.back().data());
  }
  return m;
}

// One chunk of samples in float64 and everything the gradient computes on it: per layer z, a,
// f'(z), f''(z), delta = dL/dz and da = dL/da; g = dL/d(the loss's input), each row's weight
// in the mean (its sample weight / the number of samples), and each row's loss Hessian in its
// input, diag(curve_d) - curve_c curve_u curve_u^T (curvature::loss_curvature_row).
struct Chunk {
  std::size_t rows = 0;
  Buffer x, y, scale, g, curve_d, curve_u, curve_c;
  const std::int32_t* labels = nullptr;
  std::vector<Buffer> z, a, fp, fpp, delta, da;
};

template <class T>
void load_chunk(const Model& m, const DataView<T>& data, std::size_t r0, std::size_t rows, Chunk& c) {
  const std::size_t in = m.dims.front(), out = m.dims.back();
  c.rows = rows;
  std::copy(data.x + r0 * in, data.x + (r0 + rows) * in, c.x.data());
  if (data.y != nullptr) std::copy(data.y + r0 * out, data.y + (r0 + rows) * out, c.y.data());
  c.labels = data.labels == nullptr ? nullptr : data.labels + r0;
  for (std::size_t r = 0; r < rows; ++r)
    c.scale[r] = (data.weights == nullptr ? 1.0 : double(data.weights[r0 + r])) / double(data.n);
}

Chunk make_chunk(const Model& m, std::size_t rows, bool dense_targets) {
  Chunk c;
  c.x = Buffer(rows * m.dims.front());
  if (dense_targets) c.y = Buffer(rows * m.dims.back());
  c.scale = Buffer(rows);
  c.g = Buffer(rows * m.dims.back());
  c.curve_d = Buffer(rows * m.dims.back());
  c.curve_u = Buffer(rows * m.dims.back());
  c.curve_c = Buffer(rows);
  for (std::size_t l = 0; l < m.layers(); ++l) {
    const std::size_t n = rows * m.out(l);
    for (auto* v : {&c.z, &c.a, &c.fp, &c.fpp, &c.delta, &c.da}) v->emplace_back(n);
  }
  return c;
}

// The forward pass, the loss's gradient and the backward pass of the gradient, on the chunk.
void forward_backward(const Model& m, Chunk& c, double* pack) {
  const KernelTable<double>& k = kernels<double>();
  const std::size_t n = c.rows, last = m.layers() - 1;
  for (std::size_t l = 0; l < m.layers(); ++l) {
    const std::size_t in = m.in(l), out = m.out(l);
    const double* prev = l == 0 ? c.x.data() : c.a[l - 1].data();
    const LayerSpec& s = m.specs[l];
    gemm(n, out, in, prev, std::ptrdiff_t(in), 1, m.kernel[l].data(), std::ptrdiff_t(out), 1, false, c.z[l].data(),
         std::ptrdiff_t(out), pack);
    k.bias_activation({n, out, s.activation, s.alpha, s.use_bias ? m.bias[l].data() : nullptr, c.z[l].data(),
                       std::ptrdiff_t(out), c.a[l].data(), std::ptrdiff_t(out)});
    if (s.activation != Activation::softmax)
      curvature::activation_derivatives(s.activation, s.alpha, n * out, c.z[l].data(), c.a[l].data(), c.fp[l].data(),
                                        c.fpp[l].data());
  }
  const std::size_t out = m.dims.back();
  const LossSpec& loss = m.loss;
  const double* pred = loss.uses_logits ? c.z[last].data() : c.a[last].data();
  // grad_scale 1 and the row weights: every row's own scale (sample weight / samples).
  k.loss({loss.loss, loss.uses_logits || loss.from_logits, n, out, pred, std::ptrdiff_t(out),
          c.y.size() != 0 ? c.y.data() : nullptr, std::ptrdiff_t(out), c.labels, c.scale.data(), 1.0, c.g.data(),
          std::ptrdiff_t(out), nullptr});
  for (std::size_t r = 0; r < n; ++r)
    c.curve_c[r] = curvature::loss_curvature_row(loss.loss, loss.uses_logits || loss.from_logits, out, pred + r * out,
                                                 c.y.size() != 0 ? c.y.data() + r * out : nullptr,
                                                 c.labels != nullptr ? c.labels[r] : 0, c.scale[r],
                                                 c.curve_d.data() + r * out, c.curve_u.data() + r * out);
  std::copy(c.g.data(), c.g.data() + n * out, c.da[last].data());
  for (std::size_t l = last + 1; l-- > 0;) {
    const LayerSpec& s = m.specs[l];
    const auto ld = std::ptrdiff_t(m.out(l));
    if (l == last && loss.uses_logits) {
      std::copy(c.g.data(), c.g.data() + n * out, c.delta[l].data());
    } else {
      k.activation_backward({n, m.out(l), s.activation, s.alpha, c.z[l].data(), ld, c.a[l].data(), ld,
                             c.da[l].data(), ld, c.delta[l].data(), ld});
    }
    if (l == 0) break;
    gemm(n, m.in(l), m.out(l), c.delta[l].data(), ld, 1, m.kernel[l].data(), 1, ld, false, c.da[l - 1].data(),
         std::ptrdiff_t(m.in(l)), pack);
  }
}

// A block of directions: unit vectors e_first ... e_{first + count - 1} (dense null), or the
// `count` rows of dense (P values each).
struct Directions {
  std::size_t first, count;
  const double* dense;
};

// The R arrays of one block (rows r * B + b), the gradients' R before they are added to H's
// rows (t1, t2), and the block's own GEMM scratch.
struct Scratch {
  std::vector<Buffer> rz, ra;  // per layer
  Buffer rdelta, rda;          // the current layer's R{delta}; the R{da} below it (or R{g})
  Buffer t1, t2;
  Buffer pack;
};

Scratch make_scratch(const Model& m, std::size_t block, std::size_t chunk_rows) {
  Scratch s;
  std::size_t kernel = 0;
  for (std::size_t l = 0; l < m.layers(); ++l) {
    s.rz.emplace_back(block * chunk_rows * m.out(l));
    s.ra.emplace_back(block * chunk_rows * m.out(l));
    kernel = std::max(kernel, m.in(l) * m.out(l));
  }
  s.rdelta = Buffer(block * chunk_rows * m.widest);
  s.rda = Buffer(block * chunk_rows * m.widest);
  s.t1 = Buffer(block * kernel);
  s.t2 = Buffer(block * kernel);
  s.pack = pack_buffer();
  return s;
}

// R{a} from R{z} for layer l's activation; row i of the n B rows reads the chunk's row i / B.
void forward_r(const Model& m, const Chunk& c, std::size_t l, std::size_t B, const double* rz, double* ra) {
  const std::size_t rows = c.rows * B, out = m.out(l);
  const double* a = c.a[l].data();
  if (m.specs[l].activation == Activation::softmax) {  // a (R{z} - <a, R{z}>)
    for (std::size_t i = 0; i < rows; ++i) {
      const double* ar = a + (i / B) * out;
      const double* rzr = rz + i * out;
      double dot = 0;
      for (std::size_t j = 0; j < out; ++j) dot += ar[j] * rzr[j];
      for (std::size_t j = 0; j < out; ++j) ra[i * out + j] = ar[j] * (rzr[j] - dot);
    }
    return;
  }
  const double* fp = c.fp[l].data();
  for (std::size_t i = 0; i < rows; ++i) {
    const double* f = fp + (i / B) * out;
    for (std::size_t j = 0; j < out; ++j) ra[i * out + j] = f[j] * rz[i * out + j];
  }
}

// R{delta} of layer l from R{da} (rda) and, unless null (a layer below every direction, whose
// R{z} and R{a} are 0), R{z} and R{a}; da is the chunk's dL/da of that layer.
void backward_r(const Model& m, const Chunk& c, std::size_t l, std::size_t B, const double* da, const double* rz,
                const double* ra, const double* rda, double* rdelta) {
  const std::size_t rows = c.rows * B, out = m.out(l);
  if (m.specs[l].activation == Activation::softmax) {
    // delta = a (da - <a, da>):  R{delta} = R{a} (da - <a, da>) + a (R{da} - <R{a}, da> - <a, R{da}>)
    const double* a = c.a[l].data();
    for (std::size_t i = 0; i < rows; ++i) {
      const double* ar = a + (i / B) * out;
      const double* dar = da + (i / B) * out;
      const double* rar = ra == nullptr ? nullptr : ra + i * out;
      const double* rdar = rda + i * out;
      double a_da = 0, ra_da = 0, a_rda = 0;
      for (std::size_t j = 0; j < out; ++j) {
        a_da += ar[j] * dar[j];
        a_rda += ar[j] * rdar[j];
        if (rar != nullptr) ra_da += rar[j] * dar[j];
      }
      for (std::size_t j = 0; j < out; ++j) {
        const double first = rar == nullptr ? 0.0 : rar[j] * (dar[j] - a_da);
        rdelta[i * out + j] = first + ar[j] * (rdar[j] - ra_da - a_rda);
      }
    }
    return;
  }
  const double* fp = c.fp[l].data();
  const double* fpp = c.fpp[l].data();
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t base = (i / B) * out;
    for (std::size_t j = 0; j < out; ++j) {
      const double second = rz == nullptr ? 0.0 : fpp[base + j] * rz[i * out + j] * da[base + j];
      rdelta[i * out + j] = second + fp[base + j] * rda[i * out + j];
    }
  }
}

// Adds H v for the chunk to out (row b for direction b, P values each).
void r_pass(const Model& m, const Chunk& c, const Directions& d, Scratch& s, double* out) {
  const std::size_t n = c.rows, B = d.count, rows = n * B, P = m.parameters, L = m.layers();
  const std::size_t last = L - 1;
  // The first layer any direction of the block moves: R{z} and R{a} are 0 below it.
  const std::size_t start = d.dense != nullptr ? 0 : m.locate(d.first).layer;
  std::vector<Position> unit;
  if (d.dense == nullptr)
    for (std::size_t b = 0; b < B; ++b) unit.push_back(m.locate(d.first + b));
  double* pack = s.pack.data();

  for (std::size_t l = start; l < L; ++l) {
    const std::size_t in = m.in(l), o = m.out(l);
    const double* prev = l == 0 ? c.x.data() : c.a[l - 1].data();
    double* rz = s.rz[l].data();
    if (l > start) {
      gemm(rows, o, in, s.ra[l - 1].data(), std::ptrdiff_t(in), 1, m.kernel[l].data(), std::ptrdiff_t(o), 1, false,
           rz, std::ptrdiff_t(o), pack);
    } else {
      std::fill(rz, rz + rows * o, 0.0);
    }
    for (std::size_t b = 0; b < B; ++b) {
      if (d.dense != nullptr) {  // + a_{l-1} V_l + v_b,l
        const double* v = d.dense + b * P;
        gemm(n, o, in, prev, std::ptrdiff_t(in), 1, v + m.kernel_offset[l], std::ptrdiff_t(o), 1, true, rz + b * o,
             std::ptrdiff_t(B * o), pack);
        if (m.specs[l].use_bias)
          for (std::size_t r = 0; r < n; ++r)
            for (std::size_t j = 0; j < o; ++j) rz[(r * B + b) * o + j] += v[m.bias_offset[l] + j];
      } else if (unit[b].layer == l) {  // one 1 in V_l or v_b,l: a column of a_{l-1}, or ones
        const Position& at = unit[b];
        for (std::size_t r = 0; r < n; ++r) rz[(r * B + b) * o + at.j] += at.bias ? 1.0 : prev[r * in + at.i];
      }
    }
    forward_r(m, c, l, B, rz, s.ra[l].data());
  }

  // The loss: R{g} = (diag(d) - c u u^T) R{pred} into rda, then R{delta} of the output layer.
  const std::size_t outputs = m.dims.back();
  const bool logits = m.loss.uses_logits;
  const double* rpred = logits ? s.rz[last].data() : s.ra[last].data();
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t r = i / B;
    const double* cd = c.curve_d.data() + r * outputs;
    const double* cu = c.curve_u.data() + r * outputs;
    const double* rp = rpred + i * outputs;
    double dot = 0;
    for (std::size_t j = 0; j < outputs; ++j) dot += cu[j] * rp[j];
    const double cdot = c.curve_c[r] * dot;
    for (std::size_t j = 0; j < outputs; ++j) s.rda[i * outputs + j] = cd[j] * rp[j] - cdot * cu[j];
  }
  if (logits) {
    std::copy(s.rda.data(), s.rda.data() + rows * outputs, s.rdelta.data());
  } else {
    backward_r(m, c, last, B, c.da[last].data(), s.rz[last].data(), s.ra[last].data(), s.rda.data(), s.rdelta.data());
  }

  for (std::size_t l = L; l-- > 0;) {
    const std::size_t in = m.in(l), o = m.out(l);
    const double* prev = l == 0 ? c.x.data() : c.a[l - 1].data();
    const double* delta = c.delta[l].data();
    const double* rdelta = s.rdelta.data();
    const bool prev_moves = l > start;  // R{a_{l-1}} != 0
    // R{dL/dW_l} = a_{l-1}^T R{delta_l} + R{a_{l-1}}^T delta_l, for every direction at once:
    // t1 (in x B o) = a_{l-1}^T [R{delta_l} of each b], t2 (o x B in) = delta_l^T [R{a_{l-1}} of each b].
    gemm(in, B * o, n, prev, 1, std::ptrdiff_t(in), rdelta, std::ptrdiff_t(B * o), 1, false, s.t1.data(),
         std::ptrdiff_t(B * o), pack);
    if (prev_moves)
      gemm(o, B * in, n, delta, 1, std::ptrdiff_t(o), s.ra[l - 1].data(), std::ptrdiff_t(B * in), 1, false,
           s.t2.data(), std::ptrdiff_t(B * in), pack);
    for (std::size_t b = 0; b < B; ++b) {
      double* kernel_row = out + b * P + m.kernel_offset[l];
      const double* t1 = s.t1.data() + b * o;
      for (std::size_t i = 0; i < in; ++i)
        for (std::size_t j = 0; j < o; ++j) kernel_row[i * o + j] += t1[i * B * o + j];
      if (prev_moves) {
        const double* t2 = s.t2.data() + b * in;
        for (std::size_t i = 0; i < in; ++i)
          for (std::size_t j = 0; j < o; ++j) kernel_row[i * o + j] += t2[j * B * in + i];
      }
      if (m.specs[l].use_bias) {  // R{dL/db_l}: the column sums of R{delta_l}
        double* bias_row = out + b * P + m.bias_offset[l];
        for (std::size_t r = 0; r < n; ++r)
          for (std::size_t j = 0; j < o; ++j) bias_row[j] += rdelta[(r * B + b) * o + j];
      }
    }
    // Unit directions stop at their first layer: H's columns below it are the rows of earlier
    // weights, which loss_hessian copies by symmetry.
    if (l == start) break;
    // R{da_{l-1}} = R{delta_l} W_l^T + delta_l V_l^T, then R{delta_{l-1}}.
    double* rda = s.rda.data();
    gemm(rows, in, o, rdelta, std::ptrdiff_t(o), 1, m.kernel[l].data(), 1, std::ptrdiff_t(o), false, rda,
         std::ptrdiff_t(in), pack);
    for (std::size_t b = 0; b < B; ++b) {
      if (d.dense != nullptr) {
        gemm(n, in, o, delta, std::ptrdiff_t(o), 1, d.dense + b * P + m.kernel_offset[l], 1, std::ptrdiff_t(o), true,
             rda + b * in, std::ptrdiff_t(B * in), pack);
      } else if (unit[b].layer == l && !unit[b].bias) {
        const Position& at = unit[b];
        for (std::size_t r = 0; r < n; ++r) rda[(r * B + b) * in + at.i] += delta[r * o + at.j];
      }
    }
    const bool moves = l - 1 >= start;
    backward_r(m, c, l - 1, B, c.da[l - 1].data(), moves ? s.rz[l - 1].data() : nullptr,
               moves ? s.ra[l - 1].data() : nullptr, rda, s.rdelta.data());
  }
}

// Rows per chunk and directions per block for `directions` directions over n samples on
// `tasks` threads at once.
struct Plan {
  std::size_t chunk_rows, block;
};

Plan plan(const Model& m, std::size_t n, std::size_t directions, std::size_t tasks) {
  const std::size_t forward_per_row = 6 * m.unit_sum + m.dims.front() + 4 * m.dims.back() + 2;
  const std::size_t r_per_row = 2 * m.unit_sum + 2 * m.widest;  // per direction
  Plan p;
  p.chunk_rows = std::clamp<std::size_t>(kScratchValues / (forward_per_row + r_per_row), 1,
                                         std::min(std::max<std::size_t>(n, 1), kMaxChunkRows));
  std::size_t kernel = 0;  // t1 and t2 per direction
  for (std::size_t l = 0; l < m.layers(); ++l) kernel = std::max(kernel, m.in(l) * m.out(l));
  p.block = std::clamp<std::size_t>(kScratchValues / tasks / (p.chunk_rows * r_per_row + 2 * kernel), 1,
                                    std::min(kMaxBlock, std::max<std::size_t>(directions, 1)));
  return p;
}

template <class T>
void check_data(const Network<T>& net, const LossSpec& loss, const DataView<T>& data) {
  if (data.x == nullptr) throw std::invalid_argument("x is missing");
  if (data.n == 0) throw std::invalid_argument("the batch is empty");
  if (!has_curvature(loss.loss))
    throw std::invalid_argument(std::string("second-order methods support the losses mse, mae and the cross-entropies; "
                                            "Received: loss=") + loss_name(loss.loss));
  if (is_sparse(loss.loss) ? data.labels == nullptr : data.y == nullptr)
    throw std::invalid_argument(std::string(loss_name(loss.loss)) + " needs " +
                                (is_sparse(loss.loss) ? "integer class labels" : "dense targets"));
  net.check_finite(data.x, data.n);
  if (data.labels != nullptr)
    for (std::size_t r = 0; r < data.n; ++r)
      if (data.labels[r] < 0 || std::size_t(data.labels[r]) >= net.output_dim())
        throw std::invalid_argument("label " + std::to_string(data.labels[r]) + " is outside [0, " +
                                    std::to_string(net.output_dim()) + ")");
}

// Runs fn(chunk) over the data in chunks of plan.chunk_rows rows.
template <class T, class F>
void for_chunks(const Model& m, const DataView<T>& data, const Plan& p, F&& fn) {
  Chunk c = make_chunk(m, p.chunk_rows, data.y != nullptr);
  Buffer pack = pack_buffer();
  for (std::size_t r0 = 0; r0 < data.n; r0 += p.chunk_rows) {
    load_chunk(m, data, r0, std::min(p.chunk_rows, data.n - r0), c);
    forward_backward(m, c, pack.data());
    fn(static_cast<const Chunk&>(c));
  }
}

// The first non-finite value of out (rows x P), as "the row of <weight> ...", or "".
std::string first_non_finite(const Model& m, const double* out, std::size_t rows, std::size_t first_row) {
  for (std::size_t i = 0; i < rows * m.parameters; ++i)
    if (!std::isfinite(out[i]))
      return "first in the row of " + m.describe(first_row + i / m.parameters) + ", column of " +
             m.describe(i % m.parameters);
  return "";
}

}  // namespace

template <class T>
std::size_t parameter_count(const Network<T>& net) {
  std::size_t p = 0;
  for (std::size_t l = 0; l < net.num_layers(); ++l)
    p += net.fan_in(l) * net.spec(l).units + (net.spec(l).use_bias ? net.spec(l).units : 0);
  return p;
}

std::size_t hessian_bytes(std::size_t parameters) {
  // P x P x 8 fits in 64 bits up to P = 2^28, far beyond the cap.
  const bool representable = parameters <= (std::size_t(1) << 28);
  const std::size_t bytes = representable ? parameters * parameters * sizeof(double) : 0;
  const std::string what = "the Hessian of P=" + std::to_string(parameters) + " weights needs " +
                           (representable ? std::to_string(bytes) : std::string("more than 2^59")) +
                           " bytes (P x P float64)";
  if (parameters > kMaxHessianParameters)
    throw SizeError(what + ", more than the " + std::to_string(kMaxHessianParameters) +
                        " weights compute_hessian allows; use hessian_vector_product, which never forms it",
                    -1, bytes);
  const std::size_t memory = physical_memory_bytes();
  if (memory != 0 && bytes > memory)
    throw SizeError(what + ", more than the machine's " + std::to_string(memory) + " bytes of memory", -1, bytes);
  return bytes;
}

template <class T>
void loss_hessian(Network<T>& net, const LossSpec& loss, const DataView<T>& data, double* out) {
  check_data(net, loss, data);
  const Model m = model_of(net, loss);
  const std::size_t P = m.parameters;
  hessian_bytes(P);
  std::fill(out, out + P * P, 0.0);
  ThreadPool& pool = ThreadPool::instance();
  const Plan p = plan(m, data.n, P, pool.num_threads());
  const std::size_t blocks = (P + p.block - 1) / p.block;
  const std::size_t tasks = std::min(pool.num_threads(), blocks);
  std::vector<Scratch> scratch;
  for (std::size_t t = 0; t < tasks; ++t) scratch.push_back(make_scratch(m, p.block, p.chunk_rows));
  for_chunks(m, data, p, [&](const Chunk& c) {
    // Each block writes its own rows of H: the split over threads changes no value.
    pool.run(tasks, [&](std::size_t t) {
      for (std::size_t k = t; k < blocks; k += tasks) {
        const Directions d{k * p.block, std::min(p.block, P - k * p.block), nullptr};
        r_pass(m, c, d, scratch[t], out + d.first * P);
      }
    });
  });
  for (std::size_t q = 0; q < P; ++q) out[q * P + q] += m.penalty_curvature(q);
  // Row i holds every column from its block's first layer on, so each pair i < j is in row i
  // (j's layer is at least i's): the lower triangle is its copy, and H exactly symmetric.
  for (std::size_t i = 0; i < P; ++i)
    for (std::size_t j = i + 1; j < P; ++j) out[j * P + i] = out[i * P + j];
  const std::string bad = first_non_finite(m, out, P, 0);
  if (!bad.empty())
    throw std::invalid_argument("the Hessian holds NaN or infinity (" + bad +
                                "): the loss's second derivatives overflow float64 at these weights and data");
}

template <class T>
void loss_hessian_vector_product(Network<T>& net, const LossSpec& loss, const DataView<T>& data, const double* v,
                                 double* out) {
  check_data(net, loss, data);
  const Model m = model_of(net, loss);
  const std::size_t P = m.parameters;
  std::fill(out, out + P, 0.0);
  const Plan p = plan(m, data.n, 1, 1);
  Scratch s = make_scratch(m, 1, p.chunk_rows);
  for_chunks(m, data, p, [&](const Chunk& c) { r_pass(m, c, Directions{0, 1, v}, s, out); });
  for (std::size_t q = 0; q < P; ++q) out[q] += m.penalty_curvature(q) * v[q];
  for (std::size_t q = 0; q < P; ++q)
    if (!std::isfinite(out[q]))
      throw std::invalid_argument("the Hessian-vector product holds NaN or infinity (first at " + m.describe(q) +
                                  "): the loss's second derivatives, or their product with v, overflow float64");
}

template std::size_t parameter_count<float>(const Network<float>&);
template std::size_t parameter_count<double>(const Network<double>&);
template void loss_hessian<float>(Network<float>&, const LossSpec&, const DataView<float>&, double*);
template void loss_hessian<double>(Network<double>&, const LossSpec&, const DataView<double>&, double*);
template void loss_hessian_vector_product<float>(Network<float>&, const LossSpec&, const DataView<float>&,
                                                 const double*, double*);
template void loss_hessian_vector_product<double>(Network<double>&, const LossSpec&, const DataView<double>&,
                                                  const double*, double*);

}  // namespace fastmlp
