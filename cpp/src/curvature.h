// Second derivatives, in float64, of what a network is made of: the elementwise activations and
// the losses as functions of their input. The R-operator pass (hessian.cpp) chains them; the
// first derivatives it needs come from the kernels the gradient uses, and these follow the same
// conventions at every kink (see hessian.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastmlp/activation.h"
#include "fastmlp/loss.h"

namespace fastmlp::curvature {

// f'(z) into fp and f''(z) into fpp, n values; a = f(z). Every activation but softmax (whose
// derivatives are not elementwise: the R-operator pass applies its Jacobian row by row).
void activation_derivatives(Activation act, double alpha, std::size_t n, const double* z, const double* a,
                            double* fp, double* fpp);

// One sample's loss as a function of its `cols` inputs `pred` (logits when from_logits, as the
// loss kernel reads them): its Hessian in pred, times scale, is diag(d) - c u u^T for every loss
// here (diagonal for mse, mae and binary cross-entropy; sum(y) (diag(p) - p p^T) for categorical
// cross-entropy from logits, p = softmax(pred); a diagonal minus a constant from probabilities).
// Writes d and u (cols values each) and returns c. Targets: the dense row y, or (y null) the
// class `label`.
double loss_curvature_row(Loss loss, bool from_logits, std::size_t cols, const double* pred, const double* y,
                          std::int32_t label, double scale, double* d, double* u);

}  // namespace fastmlp::curvature
