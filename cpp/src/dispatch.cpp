// The ISA registry, listed best first: the first entry this CPU supports is the default.
// Adding an instruction set is one folder of kernels and one line here.
#include "fastmlp/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

namespace fastmlp {

namespace scalar {
#include "kernels/kernel_decls.inc"
}
#ifdef FASTMLP_HAVE_AVX2
namespace avx2 {
#include "kernels/kernel_decls.inc"
}
#endif
#ifdef FASTMLP_HAVE_AVX512
namespace avx512 {
#include "kernels/kernel_decls.inc"
}
#endif

namespace {

// An ISA's table builders are compiled with its flags like the rest of its folder, and the
// compiler may use its registers even to fill a struct of pointers. So a builder runs only after
// supported() has said yes (tables_of): nothing of an ISA runs on a CPU that lacks it.
struct Isa {
  const char* name;
  bool (*supported)();
  KernelTable<float> (*build_f32)();
  KernelTable<double> (*build_f64)();
};

struct Tables {
  const char* name;
  KernelTable<float> f32;
  KernelTable<double> f64;
};

bool always() { return true; }

#ifdef FASTMLP_HAVE_AVX2
// __builtin_cpu_supports also checks that the OS saves the ymm registers (XGETBV).
bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

#ifdef FASTMLP_HAVE_AVX512
// F for the 512-bit vectors and masks, VL and BW for the masked 256-bit and byte-mask forms, DQ
// for the 64-bit integer conversions and the float logic; __builtin_cpu_supports also checks
// that the OS saves the zmm and mask registers (XGETBV).
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma");
}
#endif

const std::vector<Isa>& registry() {
  static const std::vector<Isa> isas = {
#ifdef FASTMLP_HAVE_AVX512
      {"avx512", cpu_has_avx512, &avx512::table<float>, &avx512::table<double>},
#endif
#ifdef FASTMLP_HAVE_AVX2
      {"avx2", cpu_has_avx2_fma, &avx2::table<float>, &avx2::table<double>},
#endif
      {"scalar", always, &scalar::table<float>, &scalar::table<double>},
  };
  return isas;
}

// Only for an ISA whose supported() is true. Built once per ISA and kept for the process's life
// (a std::map's nodes never move), so a pointer to them stays valid for every thread.
std::mutex g_built_mutex;
std::map<const Isa*, Tables> g_built;

const Tables& tables_of(const Isa& isa) {
  std::lock_guard<std::mutex> lock(g_built_mutex);
  auto it = g_built.find(&isa);
  if (it == g_built.end())
    it = g_built.emplace(&isa, Tables{isa.name, isa.build_f32(), isa.build_f64()}).first;
  return it->second;
}

std::atomic<const Tables*> g_active{nullptr};

const Tables& active() {
  const Tables* isa = g_active.load(std::memory_order_acquire);
  if (isa == nullptr) {
    select_isa_from_environment();
    isa = g_active.load(std::memory_order_acquire);
  }
  return *isa;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const auto& isa : registry())
    if (isa.supported()) names.emplace_back(isa.name);
  return names;
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> names;
  for (const auto& isa : registry()) names.emplace_back(isa.name);
  return names;
}

std::vector<std::string> built_isas() {
  std::lock_guard<std::mutex> lock(g_built_mutex);
  std::vector<std::string> names;
  for (const auto& isa : registry())
    if (g_built.count(&isa) != 0) names.emplace_back(isa.name);
  return names;
}

std::string active_isa() { return active().name; }

void set_active_isa(const std::string& name) {
  for (const auto& isa : registry()) {
    if (name != isa.name) continue;
    if (!isa.supported())
      throw std::invalid_argument("instruction set '" + name +
                                  "' is not supported by this CPU; available: " +
                                  join(available_isas()));
    g_active.store(&tables_of(isa), std::memory_order_release);
    return;
  }
  throw std::invalid_argument("unknown instruction set '" + name + "'; this build has: " +
                              join(compiled_isas()) + " (available on this CPU: " +
                              join(available_isas()) + ")");
}

void select_isa_from_environment() {
  const char* forced = std::getenv("FASTMLP_ISA");
  if (forced != nullptr && *forced != '\0') {
    try {
      set_active_isa(forced);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("FASTMLP_ISA: ") + e.what());
    }
    return;
  }
  set_active_isa(available_isas().front());
}

template <>
const KernelTable<float>& kernels<float>() {
  return active().f32;
}
template <>
const KernelTable<double>& kernels<double>() {
  return active().f64;
}

}  // namespace fastmlp
