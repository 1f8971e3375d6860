// C entry points for threadpoolctl (python/fastmlp/_threadpoolctl.py): threadpoolctl finds a
// library among those loaded by its file name and by the symbols it exports, and calls it
// through ctypes. No other extension called _core exports these names, so none other matches.
// They never throw: a C caller cannot catch.
#include <cstddef>

#include "fastmlp/thread_pool.h"

#if defined(_WIN32)
#define FASTMLP_C_EXPORT extern "C" __declspec(dllexport)
#else
#define FASTMLP_C_EXPORT extern "C" __attribute__((visibility("default")))
#endif

FASTMLP_C_EXPORT int fastmlp_get_num_threads() noexcept {
  return int(fastmlp::ThreadPool::instance().num_threads());
}

// n is clamped to 1 ... 1024 (threadpoolctl passes any limit it was given). Returns 0, or -1
// when the pool could not change (the system refused a thread).
FASTMLP_C_EXPORT int fastmlp_set_num_threads(int n) noexcept {
  const int clamped = n < 1 ? 1 : (n > 1024 ? 1024 : n);
  try {
    fastmlp::ThreadPool::instance().set_num_threads(std::size_t(clamped));
    return 0;
  } catch (...) {
    return -1;
  }
}
