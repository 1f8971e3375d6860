// A hint inside spin-wait loops (the thread pool's, the feature pipeline's): on x86 it lets the
// core give its resources to the other hardware thread and avoids a memory-order flush on exit.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FASTMLP_PAUSE() _mm_pause()
#else
#define FASTMLP_PAUSE() ((void)0)
#endif
