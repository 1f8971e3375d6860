#include "fastmlp/thread_pool.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__linux__)
#include <sched.h>
#endif

#include "spin_pause.h"

namespace fastmlp {

namespace {
// Spin this many rounds before sleeping: a batch step is tens of microseconds, and a sleep/wake
// round trip costs about as much, so workers stay hot between steps of one training call.
constexpr int kSpinRounds = 20000;
}  // namespace

std::size_t default_num_threads() {
  if (const char* env = std::getenv("FASTMLP_NUM_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || n < 1 || n > 1024)
      throw std::invalid_argument(std::string("FASTMLP_NUM_THREADS must be an integer from 1 to "
                                              "1024, got '") + env + "'");
    return std::size_t(n);
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return std::size_t(count);
  }
#endif
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() = default;

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::set_num_threads(std::size_t n) {
  if (n < 1 || n > 1024) throw std::invalid_argument("the number of threads must be from 1 to 1024");
  std::lock_guard<std::mutex> lock(run_mutex_);
  if (n == num_threads_.load() && workers_.size() == n - 1) return;
  stop_workers();
  num_threads_.store(n);
  start_workers(n - 1);
}

void ThreadPool::start_workers(std::size_t workers) {
  stopping_.store(false);
  // The generation is read here, not by the new thread: a stop that comes before the thread
  // first runs must still be seen as a change (else join() would wait forever).
  const unsigned long long generation = generation_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < workers; ++i)
    workers_.emplace_back([this, i, generation] { worker_loop(i, generation); });
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::worker_loop(std::size_t, unsigned long long seen) {
  for (;;) {
    auto changed = [&] { return generation_.load(std::memory_order_acquire) != seen || stopping_.load(); };
    int spins = 0;
    while (!changed() && spins < kSpinRounds) {
      FASTMLP_PAUSE();
      ++spins;
    }
    if (!changed()) {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait(lock, changed);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load()) return;
    for (;;) {
      const std::size_t task = next_task_.fetch_add(1, std::memory_order_acq_rel);
      if (task >= job_tasks_) break;
      job_(job_context_, task);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

bool ThreadPool::run_tasks(std::size_t tasks, Task fn, void* context, bool concurrent) {
  if (tasks == 0) return true;
  std::unique_lock<std::mutex> lock(run_mutex_, std::try_to_lock);
  if (concurrent && tasks > 1 && (!lock.owns_lock() || workers_.size() + 1 < tasks)) return false;
  if (tasks == 1 || !lock.owns_lock() || workers_.empty()) {
    for (std::size_t t = 0; t < tasks; ++t) fn(context, t);
    return true;
  }
  job_ = fn;
  job_context_ = context;
  job_tasks_ = tasks;
  pending_.store(tasks, std::memory_order_release);
  // Concurrent tasks: this thread keeps task 0 from one call to the next, so with one worker
  // each task stays on its thread (the feature pipeline's part 0 keeps its columns of the first
  // kernel in its core's cache); taken first come first served, the worker sometimes gets task
  // 0 and the parts' halves of the kernel change cores.
  next_task_.store(concurrent ? 1 : 0, std::memory_order_release);
  {
    std::lock_guard<std::mutex> wake_lock(wake_mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  if (concurrent) {
    fn(context, 0);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
  for (;;) {
    const std::size_t task = next_task_.fetch_add(1, std::memory_order_acq_rel);
    if (task >= tasks) break;
    fn(context, task);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
  while (pending_.load(std::memory_order_acquire) != 0) FASTMLP_PAUSE();
  job_ = nullptr;
  return true;
}

}  // namespace fastmlp
