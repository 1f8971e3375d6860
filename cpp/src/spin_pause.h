// A hint inside spin-wait loops (the thread pool's, the feature pipeline's): on x86 it lets the
// core give its resources to the other hardware thread and avoids a memory-order flush on exit.
#pragma once

#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FASTMLP_PAUSE() _mm_pause()
#else
#define FASTMLP_PAUSE() ((void)0)
#endif

namespace fastmlp {

// Waits for done() between threads of one parallel run: spins while the wait is short (the
// pipeline's waits are about a microsecond), then yields: with more threads than free cores
// the thread waited for may need this core to run at all.
template <class Done>
void spin_until(Done&& done) {
  for (int spins = 0; !done(); ++spins) {
    if (spins < 4000) {
      FASTMLP_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace fastmlp
