// A small persistent pool: workers are created once and wait between jobs, so a parallel step
// costs a wake-up, not a thread creation. Work is split by the caller into tasks whose results do
// not depend on which thread runs them, so every thread count gives bit-identical results.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

#include "fastmlp/late_workers.h"

namespace fastmlp {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // 1 <= n <= 1024; the first value comes from Python (fastmlp._thread_count), before any job.
  void set_num_threads(std::size_t n);
  std::size_t num_threads() const { return num_threads_.load(std::memory_order_relaxed); }

  // Runs fn(0) ... fn(tasks - 1), spread over the threads (the caller runs its share), and
  // returns when all are done. If the pool is busy (another caller), or its workers were late
  // in recent jobs (the host is not running them beside the caller: fastmlp/late_workers.h),
  // runs them all here, in task order.
  // Takes the callable by reference (no std::function: nothing is allocated per call).
  template <class F>
  void run(std::size_t tasks, F&& fn) {
    run_tasks(tasks, [](void* f, std::size_t t) { (*static_cast<std::remove_reference_t<F>*>(f))(t); },
              const_cast<void*>(static_cast<const void*>(&fn)), false);
  }

  // Runs fn(0) ... fn(tasks - 1) each on a thread of its own, all at the same time, so that a
  // task may wait for another; returns false, having run none, when the pool cannot do that now:
  // it is busy with another caller's job, has fewer threads than tasks, runs jobs on the caller
  // alone for now (its workers were late, as for run), or no worker took a
  // task within a few microseconds (the pausing part of the spin, cpp/src/waiter.h: the host is
  // not running them, or they were asleep), so that the caller never waits for threads that may
  // not run for a while. run() would then run the tasks one after the other, and a task waiting
  // for a later one would wait forever.
  template <class F>
  bool run_concurrently(std::size_t tasks, F&& fn) {
    return run_tasks(tasks, [](void* f, std::size_t t) { (*static_cast<std::remove_reference_t<F>*>(f))(t); },
                     const_cast<void*>(static_cast<const void*>(&fn)), true);
  }

  // While one with `engaged` lives, the jobs this thread runs keep all their tasks here, in task
  // order, and run_concurrently declines: for steps too small to share (a task's values do not
  // depend on the thread that runs it, so the bits stay the same). Other threads' jobs are not
  // affected.
  class CallerAlone {
   public:
    explicit CallerAlone(bool engaged);
    ~CallerAlone();
    CallerAlone(const CallerAlone&) = delete;
    CallerAlone& operator=(const CallerAlone&) = delete;

   private:
    bool before_;
  };

  // For tests: each worker sleeps this long after claiming a task, before running it (as if the
  // host preempted it there), and the caller of a run() that the workers share lets a worker
  // claim a task before it takes the others, so that every such job has a late worker; 0, the
  // default, for none.
  void set_worker_delay_for_tests(std::chrono::microseconds delay) { worker_delay_us_.store(delay.count()); }
  // How many jobs ran on the caller alone because the workers had been late.
  std::uint64_t jobs_run_alone() const { return jobs_run_alone_.load(std::memory_order_relaxed); }

  ~ThreadPool();

 private:
  ThreadPool();
  void start_workers(std::size_t workers);
  void stop_workers();
  void worker_loop(unsigned long long generation);
  using Task = void (*)(void*, std::size_t);
  // concurrent: see run_concurrently (returns whether the tasks ran).
  bool run_tasks(std::size_t tasks, Task task, void* context, bool concurrent);
  // Claims the current job's unclaimed tasks one by one and runs them; returns when none is left.
  // worker: called by a worker (which then sleeps the test delay before each task).
  void run_claimed_tasks(bool worker);
  // A concurrent job just published, its task 0 kept by the caller: pauses until the workers
  // have claimed the others, for a few microseconds at most; if none has claimed one by then,
  // withdraws the job (none of its tasks will run) and returns true.
  bool withdrawn_unclaimed(std::size_t tasks);

  std::atomic<std::size_t> num_threads_{1};
  std::mutex run_mutex_;  // one job at a time
  std::vector<std::thread> workers_;
  // The current job: set before its ticket is published, unchanged until all its tasks are done.
  Task job_ = nullptr;
  void* job_context_ = nullptr;
  // The job's task count << 32 | the next task to claim. A claim is a fetch_add, and it is valid
  // when the index it returns is below the count it returns, so a thread still claiming after
  // the job it woke for (a claim that fails, or one of the next job, equally valid) never needs
  // another field to tell, and never reads one the caller is changing.
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<std::size_t> pending_{0};  // tasks of the current job not yet done
  std::atomic<unsigned long long> generation_{0};  // changed for each job, and to stop
  std::atomic<bool> stopping_{false};
  LateWorkers late_workers_;  // used under run_mutex_
  std::atomic<std::uint64_t> jobs_run_alone_{0};
  std::atomic<std::int64_t> worker_delay_us_{0};
};

}  // namespace fastmlp
