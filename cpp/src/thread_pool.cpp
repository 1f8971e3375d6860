#include "fastmlp/thread_pool.h"

#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "waiter.h"

namespace fastmlp {

namespace {
// A ticket holds the task count in 32 bits and the next index in the other 32 (with room for
// the failed claims, one per thread per job); a larger run() runs on the calling thread.
constexpr std::size_t kMaxPooledTasks = std::size_t(1) << 31;
}  // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() { read_spin_budget_from_environment(); }

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::set_num_threads(std::size_t n) {
  if (n < 1 || n > 1024) throw std::invalid_argument("the number of threads must be from 1 to 1024");
  std::lock_guard<std::mutex> lock(run_mutex_);
  if (n == num_threads_.load() && workers_.size() == n - 1) return;
  const std::size_t before = num_threads_.load();
  stop_workers();
  num_threads_.store(n);
  late_workers_ = LateWorkers{};  // new workers: nothing seen of them yet
  try {
    start_workers(n - 1);
  } catch (const std::system_error& error) {
    // The system gave fewer threads than asked (memory for their stacks, a process limit):
    // the pool goes back to the count it had, so that a refused call changes nothing.
    stop_workers();
    late_workers_ = LateWorkers{};
    try {
      num_threads_.store(before);
      start_workers(before - 1);
    } catch (const std::system_error&) {
      stop_workers();
      num_threads_.store(1);  // the caller alone: always possible
    }
    throw std::runtime_error("could not start " + std::to_string(n - 1) + " worker threads (" + error.what() +
                             "); fastmlp keeps " + std::to_string(num_threads_.load()) + " thread(s)");
  }
}

void ThreadPool::start_workers(std::size_t workers) {
  stopping_.store(false);
  // The generation is read here, not by the new thread: a stop that comes before the thread
  // first runs must still be seen as a change (else join() would wait forever).
  const unsigned long long generation = generation_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < workers; ++i)
    workers_.emplace_back([this, generation] { worker_loop(generation); });
}

void ThreadPool::stop_workers() {
  stopping_.store(true);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  notify_waiters(&generation_);
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::worker_loop(unsigned long long seen) {
  for (;;) {
    wait_until(&generation_, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load()) return;
    run_claimed_tasks(true);
  }
}

void ThreadPool::run_claimed_tasks(bool worker) {
  for (;;) {
    // acq_rel: a valid claim reads the caller's store of the ticket (or a claim after it), so
    // it sees the job's fields; they stay as they are until this task's pending_ decrement.
    const std::uint64_t ticket = ticket_.fetch_add(1, std::memory_order_acq_rel);
    const std::uint64_t task = ticket & 0xffffffffu;
    if (task >= ticket >> 32) return;
    if (worker) {
      const std::int64_t delay = worker_delay_us_.load(std::memory_order_relaxed);
      if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
    }
    job_(job_context_, std::size_t(task));
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) notify_waiters(&pending_);
  }
}

bool ThreadPool::withdrawn_unclaimed(std::size_t tasks) {
  const std::uint64_t count = std::uint64_t(tasks) << 32;
  if (pause_briefly([&] { return (ticket_.load(std::memory_order_acquire) & 0xffffffffu) >= tasks; })) return false;
  // With FASTMLP_SPIN_US=0 the job stays: every wait blocks, and the tasks run when their
  // threads come.
  if (!waits_spin()) return false;
  // Claimed by none: take them all, so that none will run (a later claim finds none left).
  std::uint64_t unclaimed = count | 1;
  return ticket_.compare_exchange_strong(unclaimed, count | tasks, std::memory_order_acq_rel);
}

namespace {
thread_local bool t_caller_alone = false;  // a CallerAlone of this thread is engaged
}  // namespace

ThreadPool::CallerAlone::CallerAlone(bool engaged) : before_(t_caller_alone) { t_caller_alone = before_ || engaged; }

ThreadPool::CallerAlone::~CallerAlone() { t_caller_alone = before_; }

bool ThreadPool::run_tasks(std::size_t tasks, Task fn, void* context, bool concurrent) {
  if (tasks == 0) return true;
  if (t_caller_alone) {
    if (concurrent && tasks > 1) return false;
    for (std::size_t t = 0; t < tasks; ++t) fn(context, t);
    return true;
  }
  std::unique_lock<std::mutex> lock(run_mutex_, std::try_to_lock);
  using clock = LateWorkers::clock;
  // Read only with the lock (the watch is the lock holder's) and for a job the workers could share.
  const bool pooled = lock.owns_lock() && tasks > 1 && !workers_.empty() && tasks < kMaxPooledTasks;
  clock::time_point start = pooled ? clock::now() : clock::time_point{};
  const bool alone = pooled && late_workers_.serial(start);
  if (concurrent && tasks > 1 && (!lock.owns_lock() || workers_.size() + 1 < tasks || alone)) return false;
  if (alone) jobs_run_alone_.fetch_add(1, std::memory_order_relaxed);
  if (!pooled || alone) {
    for (std::size_t t = 0; t < tasks; ++t) fn(context, t);
    return true;
  }
  job_ = fn;
  job_context_ = context;
  pending_.store(tasks, std::memory_order_relaxed);
  // Concurrent tasks: this thread keeps task 0 from one call to the next, so with one worker
  // each task stays on its thread (the feature pipeline's part 0 keeps its columns of the first
  // kernel in its core's cache); taken first come first served, the worker sometimes gets task
  // 0 and the parts' halves of the kernel change cores.
  ticket_.store(std::uint64_t(tasks) << 32 | (concurrent ? 1 : 0), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  notify_waiters(&generation_);
  if (!concurrent && worker_delay_us_.load(std::memory_order_relaxed) > 0) {
    // The test hook's late worker: one claims a task before the caller takes the others.
    while ((ticket_.load(std::memory_order_acquire) & 0xffffffffu) == 0) std::this_thread::yield();
    start = clock::now();  // the caller's share starts now: waiting for the claim is not part of it
  }
  if (concurrent && withdrawn_unclaimed(tasks)) return false;
  if (concurrent) {
    fn(context, 0);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
  // Tasks no worker has taken yet run here: a run() never waits for a worker to wake up.
  run_claimed_tasks(false);
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (done()) {
    late_workers_.note(start, clock::duration::zero(), clock::duration::zero());
    return true;
  }
  const clock::time_point ran_out = clock::now();
  wait_until(&pending_, done);
  const clock::time_point end = clock::now();
  late_workers_.note(end, ran_out - start, end - ran_out);
  return true;
}

}  // namespace fastmlp
