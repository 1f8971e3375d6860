// Chooses one kernel table per element type, once: the best instruction set the CPU supports,
// unless the environment variable FASTMLP_ISA names one.
#pragma once

#include <string>
#include <vector>

#include "fastmlp/kernels.h"

namespace fastmlp {

// Instruction sets compiled into this build and supported by this CPU, best first.
std::vector<std::string> available_isas();
// Every instruction set compiled into this build, whether or not this CPU has it.
std::vector<std::string> compiled_isas();
// Instruction sets whose kernel tables exist: the active one and any activated before. Only ever
// ones this CPU supports, since nothing compiled for an ISA runs before its CPU check.
std::vector<std::string> built_isas();
std::string active_isa();
// Throws std::invalid_argument for an unknown name or one this CPU lacks.
void set_active_isa(const std::string& name);
// Applies FASTMLP_ISA if set (same errors as set_active_isa), else picks the best.
void select_isa_from_environment();

template <class T>
const KernelTable<T>& kernels();

}  // namespace fastmlp
