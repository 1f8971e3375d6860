#include "waiter.h"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#else
#include <condition_variable>
#include <mutex>
#endif

namespace fastmlp {

void read_spin_budget_from_environment() {
  std::int64_t microseconds = kDefaultSpinMicroseconds;
  if (const char* env = std::getenv("FASTMLP_SPIN_US"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long long n = std::strtoll(env, &end, 10);
    if (end == env || *end != '\0' || n < 0 || n > 1000000)
      throw std::invalid_argument(std::string("FASTMLP_SPIN_US must be an integer from 0 to 1000000 "
                                              "(microseconds), got '") + env + "'");
    microseconds = n;
  }
  waiter_detail::spin_ns.store(microseconds * 1000, std::memory_order_relaxed);
}

namespace waiter_detail {
namespace {

// Waiters park on one of a few buckets, chosen by their key: keys that share a bucket only
// wake each other spuriously (every waiter checks its done() again).
struct alignas(64) Bucket {
  std::atomic<std::uint32_t> blocked{0};  // threads in block_until on this bucket
#if defined(__linux__)
  // The futex word: changed by every notify that finds a thread blocked, so that a waiter that
  // read it before that notify does not sleep (the kernel compares it when asked to sleep).
  std::atomic<std::uint32_t> wakes{0};
#else
  std::mutex mutex;
  std::condition_variable changed;
#endif
};

constexpr std::size_t kBuckets = 64;
Bucket g_buckets[kBuckets];

Bucket& bucket_of(const void* key) {
  // Fibonacci hashing: neighbouring keys (members of one object) land in different buckets.
  const auto a = std::uint64_t(reinterpret_cast<std::uintptr_t>(key));
  return g_buckets[(a * 0x9E3779B97F4A7C15ull) >> 58];
}
static_assert(kBuckets == 64, "bucket_of keeps the hash's top 6 bits");

#if defined(__linux__)
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word is an atomic's storage");

std::uint32_t* futex_word(std::atomic<std::uint32_t>& word) { return reinterpret_cast<std::uint32_t*>(&word); }
#endif

}  // namespace

void block_until(const void* key, bool (*done)(void*), void* context) {
  Bucket& b = bucket_of(key);
#if defined(__linux__)
  b.blocked.fetch_add(1, std::memory_order_relaxed);
  // Pairs with notify_waiters' fence: either the notifier sees this count, or done() below
  // sees the notifier's store.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (;;) {
    // Read before done(): a notify after this read changes the word, and the kernel then
    // refuses to sleep on the old value; a notify before it is seen by done() (acquire).
    const std::uint32_t wakes = b.wakes.load(std::memory_order_acquire);
    if (done(context)) break;
    // Returns on a wake-up, a changed word, or a signal; the loop checks again in each case.
    syscall(SYS_futex, futex_word(b.wakes), FUTEX_WAIT_PRIVATE, wakes, nullptr, nullptr, 0);
  }
  b.blocked.fetch_sub(1, std::memory_order_relaxed);
#else
  std::unique_lock<std::mutex> lock(b.mutex);
  b.blocked.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A notifier that saw the count takes the mutex before notifying, so it cannot notify
  // between this check and the wait.
  while (!done(context)) b.changed.wait(lock);
  b.blocked.fetch_sub(1, std::memory_order_relaxed);
#endif
}

void yield_core() { std::this_thread::yield(); }

void wake_blocked(const void* key) {
  Bucket& b = bucket_of(key);
  if (b.blocked.load(std::memory_order_relaxed) == 0) return;
#if defined(__linux__)
  b.wakes.fetch_add(1, std::memory_order_release);
  syscall(SYS_futex, futex_word(b.wakes), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#else
  { std::lock_guard<std::mutex> lock(b.mutex); }
  b.changed.notify_all();
#endif
}

}  // namespace waiter_detail
}  // namespace fastmlp
