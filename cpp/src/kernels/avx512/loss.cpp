// Losses and their gradients, a vector of output columns at a time. Same definitions as the
// scalar twin (see scalar/loss.cpp): Keras 3 semantics, probability clip at eps = 1e-7 passing no
// gradient outside it, row-sum normalization for categorical cross-entropy from probabilities,
// log-sum-exp and softplus from logits.
#include "fastmlp/kernels.h"
#include "row_chunks.h"
#include "vec_math.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"

namespace {

// Dense targets, or a one-hot row built on the fly from a class index.
template <class T>
struct Target {
  const T* y;
  T label;  // used when y is null
  typename Vec<T>::reg load(const Chunk<T>& c) const {
    using V = Vec<T>;
    if (y != nullptr) return c.load(y);
    return V::keep(V::eq(V::iota(c.j), V::set1(label)), V::set1(T(1)));
  }
};

template <class T>
T row_loss(const LossArgs<T>& p, const T* pred, const Target<T>& y, T scale, T* g) {
  using V = Vec<T>;
  using reg = typename V::reg;
  const std::size_t n = p.cols;
  const reg one = V::set1(T(1)), zero = V::zero();
  const reg lo = V::set1(T(kProbabilityEpsilon)), hi = V::set1(T(1.0 - kProbabilityEpsilon));
  reg sum = zero;
  switch (p.loss) {
    case Loss::mse: {
      const reg k = V::set1(scale * T(2) / T(n));
      for_each_chunk<T>(n, [&](const Chunk<T>& c) {
        const reg d = V::sub(c.load(pred), y.load(c));  // 0 outside the row: adds nothing
        sum = V::fmadd(d, d, sum);
        if (g != nullptr) c.store(g, V::mul(k, d));
      });
      return V::hsum(sum) / T(n);
    }
    case Loss::mae: {
      const reg k = V::set1(scale / T(n));
      for_each_chunk<T>(n, [&](const Chunk<T>& c) {
        const reg d = V::sub(c.load(pred), y.load(c));
        sum = V::add(sum, V::andnot(V::sign_bit(), d));
        const reg sign = V::sub(V::keep(V::gt(d, zero), one), V::keep(V::lt(d, zero), one));
        if (g != nullptr) c.store(g, V::mul(k, sign));
      });
      return V::hsum(sum) / T(n);
    }
    case Loss::binary_crossentropy: {
      const reg k = V::set1(scale / T(n));
      for_each_chunk<T>(n, [&](const Chunk<T>& c) {
        const reg x = c.load(pred), t = y.load(c);
        if (p.from_logits) {
          sum = V::add(sum, c.inside(V::fnmadd(x, t, vsoftplus<T>(x)), zero));
          if (g != nullptr) c.store(g, V::mul(k, V::sub(vsigmoid<T>(x), t)));
        } else {
          const reg pc = V::min(hi, V::max(lo, x));
          const reg q = V::sub(one, pc);
          const reg l = V::fmadd(t, vlog<T>(pc), V::mul(V::sub(one, t), vlog<T>(q)));
          sum = V::sub(sum, c.inside(l, zero));
          if (g != nullptr) {
            const typename V::mask clipped = V::lt(x, lo) | V::gt(x, hi);
            const reg d = V::sub(V::div(V::sub(one, t), q), V::div(t, pc));
            c.store(g, V::drop(clipped, V::mul(k, d)));
          }
        }
      });
      return V::hsum(sum) / T(n);
    }
    default:
      break;
  }
  // Categorical cross-entropy (dense or sparse targets).
  reg ysum = zero;
  for_each_chunk<T>(n, [&](const Chunk<T>& c) { ysum = V::add(ysum, y.load(c)); });
  const reg y_total = V::set1(V::hsum(ysum));
  if (p.from_logits) {
    reg vmax = V::set1(-T(__builtin_inf()));
    for_each_chunk<T>(n, [&](const Chunk<T>& c) { vmax = V::max(vmax, c.inside(c.load(pred), vmax)); });
    const reg zmax = V::set1(V::hmax(vmax));
    reg esum = zero;
    for_each_chunk<T>(n, [&](const Chunk<T>& c) {
      esum = V::add(esum, c.inside(vexp<T>(V::sub(c.load(pred), zmax)), zero));
    });
    const reg lse = V::add(zmax, vlog<T>(V::set1(V::hsum(esum))));
    const reg k = V::set1(scale);
    for_each_chunk<T>(n, [&](const Chunk<T>& c) {
      const reg z = c.load(pred), t = y.load(c);
      sum = V::fmadd(t, V::sub(lse, z), sum);  // t is 0 outside the row
      if (g != nullptr) c.store(g, V::mul(k, V::fnmadd(t, one, V::mul(vexp<T>(V::sub(z, lse)), y_total))));
    });
    return V::hsum(sum);
  }
  reg psum = zero;
  for_each_chunk<T>(n, [&](const Chunk<T>& c) { psum = V::add(psum, c.load(pred)); });
  const reg s = V::set1(V::hsum(psum));
  reg kept_y = zero;
  for_each_chunk<T>(n, [&](const Chunk<T>& c) {
    const reg q = V::div(c.load(pred), s), t = y.load(c);
    const reg qc = V::min(hi, V::max(lo, q));
    sum = V::fnmadd(t, vlog<T>(qc), sum);
    const typename V::mask clipped = V::lt(q, lo) | V::gt(q, hi);
    kept_y = V::add(kept_y, V::drop(clipped, t));  // y over the entries the clip lets through
  });
  if (g != nullptr) {
    const reg kept_total = V::set1(V::hsum(kept_y));
    const reg k = V::set1(scale);
    for_each_chunk<T>(n, [&](const Chunk<T>& c) {
      const reg q = V::div(c.load(pred), s), t = y.load(c);
      const typename V::mask clipped = V::lt(q, lo) | V::gt(q, hi);
      const reg own = V::drop(clipped, V::div(t, q));  // [kept] y_i / q_i
      c.store(g, V::mul(k, V::div(V::sub(kept_total, own), s)));
    });
  }
  return V::hsum(sum);
}

}  // namespace

template <class T>
double loss(const LossArgs<T>& p) {
  double total = 0;
  for (std::size_t r = 0; r < p.rows; ++r) {
    const T* pred = p.pred + std::ptrdiff_t(r) * p.ldp;
    const Target<T> y{p.y == nullptr ? nullptr : p.y + std::ptrdiff_t(r) * p.ldy,
                      p.labels == nullptr ? T(0) : T(p.labels[r])};
    T* g = p.grad == nullptr ? nullptr : p.grad + std::ptrdiff_t(r) * p.ldg;
    const T w = p.row_weight == nullptr ? T(1) : p.row_weight[r];
    const T l = row_loss<T>(p, pred, y, w * p.grad_scale, g);
    if (p.row_loss != nullptr) p.row_loss[r] = l;
    total += double(w) * double(l);
  }
  return total;
}

template double loss<float>(const LossArgs<float>&);
template double loss<double>(const LossArgs<double>&);

}  // namespace fastmlp::avx512
