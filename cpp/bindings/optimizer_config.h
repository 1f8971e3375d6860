// Python optimizer settings (a dict made by fastmlp.optimizers) to the core's OptimizerConfig.
#pragma once

#include <pybind11/pybind11.h>

#include "fastmlp/optimizer.h"

namespace fastmlp::bindings {

OptimizerConfig optimizer_config_from(const pybind11::dict& settings);

}  // namespace fastmlp::bindings
