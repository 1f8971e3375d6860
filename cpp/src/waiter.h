// Waiting between the threads of one parallel run: spin briefly, then block.
//
// A thread that waits for another (a pool worker for the next job, the caller for a job's last
// task, a feature-pipeline part for the rows of the part before it, the parts at their barrier)
// first spins: with a core for every thread, what it waits for comes within microseconds, far
// sooner than a blocked thread wakes up again (tens of microseconds on a virtual machine). For
// the first kPauseMicroseconds it only pauses between checks, which covers the waits of a step
// on an idle machine; then, up to the spin budget, it offers its core between checks
// (sched_yield), so that a thread ready to run there (the partner it waits for, when the two share
// a core, or another process's) runs at once; then it blocks (a futex on Linux, else a condition
// variable) until notified. No wait spins for longer than the budget, so a thread whose partner
// the host has descheduled (two processes training at once, each with a thread per core) gives
// its core away instead of burning its time slice and the partner's. Bounded in time, not in
// rounds, the budget means the same on every CPU.
//
// FASTMLP_SPIN_US sets the budget in microseconds, an integer from 0 to 1000000; the thread pool
// reads it once, when it starts (an invalid value is an error at import, as one of
// FASTMLP_NUM_THREADS is). Default: kDefaultSpinMicroseconds. 0 makes every wait block at once
// and every concurrent run wait for its threads (see ThreadPool::run_concurrently): the path
// the tests force.
//
// Protocol: the waiting thread calls wait_until(key, done); every thread whose store can make
// done() true calls notify_waiters(key) after that store. The key is any address the two agree
// on (it is only hashed, never read). A notify finding no thread blocked on the key's bucket
// costs a fence and a load, no system call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FASTMLP_PAUSE() _mm_pause()
#else
#define FASTMLP_PAUSE() ((void)0)
#endif

namespace fastmlp {

constexpr std::int64_t kDefaultSpinMicroseconds = 50;
constexpr std::int64_t kPauseMicroseconds = 4;

// Reads FASTMLP_SPIN_US (see above); throws std::invalid_argument for an invalid value.
void read_spin_budget_from_environment();

namespace waiter_detail {
// The spin budget, set once before the pool starts its threads.
inline std::atomic<std::int64_t> spin_ns{kDefaultSpinMicroseconds * 1000};
// Blocks until done(context) holds; see the protocol above.
void block_until(const void* key, bool (*done)(void*), void* context);
// The slow half of notify_waiters: wakes the threads blocked on key's bucket, if any.
void wake_blocked(const void* key);
// Offers this thread's core to another thread ready to run on it, if any.
void yield_core();

// Checks done() until it holds or `nanoseconds` have passed, pausing between checks, or with
// `yielding` offering the core between them; returns done().
template <class Done>
bool check_for(Done& done, std::int64_t nanoseconds, bool yielding) {
  using clock = std::chrono::steady_clock;
  const clock::time_point end = clock::now() + std::chrono::nanoseconds(nanoseconds);
  do {
    if (yielding) {
      yield_core();
      if (done()) return true;
    } else {
      for (int i = 0; i < 8; ++i) {
        FASTMLP_PAUSE();
        if (done()) return true;
      }
    }
  } while (clock::now() < end);
  return done();
}

inline std::int64_t pause_ns(std::int64_t spin) { return spin < kPauseMicroseconds * 1000 ? spin : kPauseMicroseconds * 1000; }
}  // namespace waiter_detail

// Whether waits spin before they block (FASTMLP_SPIN_US is not 0).
inline bool waits_spin() { return waiter_detail::spin_ns.load(std::memory_order_relaxed) > 0; }

// Checks done() (free of side effects, its loads acquire) until it holds, pausing between
// checks, for at most the budget's pausing part; returns done(). Keeps the core throughout.
template <class Done>
bool pause_briefly(Done&& done) {
  if (done()) return true;
  return waiter_detail::check_for(done, waiter_detail::pause_ns(waiter_detail::spin_ns.load(std::memory_order_relaxed)),
                                  false);
}

// Returns once done() (as above) holds: spins as described above, then blocks until a
// notify_waiters(key) finds done() true.
template <class Done>
void wait_until(const void* key, Done&& done) {
  if (done()) return;
  const std::int64_t spin = waiter_detail::spin_ns.load(std::memory_order_relaxed);
  const std::int64_t pause = waiter_detail::pause_ns(spin);
  if (spin > 0 && (waiter_detail::check_for(done, pause, false) ||
                   (spin > pause && waiter_detail::check_for(done, spin - pause, true))))
    return;
  using D = std::remove_reference_t<Done>;
  waiter_detail::block_until(key, [](void* d) { return bool((*static_cast<D*>(d))()); },
                             const_cast<void*>(static_cast<const void*>(&done)));
}

// Call after every store that may make a waiter's done() true (see the protocol above).
inline void notify_waiters(const void* key) {
  // Orders the caller's store before the read of the waiter count, as block_until orders its
  // count's increment before its check of done(): of a notifier and a blocking waiter, one at
  // least sees the other's write, so a wake-up is never lost.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  waiter_detail::wake_blocked(key);
}

}  // namespace fastmlp
