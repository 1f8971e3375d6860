// When to run a job's tasks on the calling thread alone because the host is not running the
// pool's threads together.
//
// A task a worker has claimed is finished only by that worker. On a machine with more runnable
// threads than cores (neighbour processes, other fits), the host preempts a worker in the middle
// of its task now and then, and the caller, done with its own tasks, waits for it a whole time
// slice of someone else (milliseconds, against tasks of tens of microseconds); the wait's yields
// hand the caller's core to the neighbours too. A 1-thread fit never waits for anyone. So the
// caller notes after each pooled job whether it waited for a late worker: longer than
// kLateMicroseconds and longer than it took itself to run out of tasks (a late wake-up or an
// imbalance on a quiet machine costs less; a worker that claims late runs a task no longer than
// the caller's). Such preemptions come one per time slice, far apart in jobs, so one late job is
// enough: the next jobs run on the caller alone for a period, kMinSerial, doubled for each late
// job within kCalm after the last period ended, up to kMaxSerial, and back to kMinSerial after
// a calm kCalm. While the host keeps preempting the workers, a probe of them then costs
// one late job per kMaxSerial; a quiet machine, where nothing is late, never goes serial. The
// busy pool's path runs these jobs (every task on the caller, in task order), and each task has
// fixed content whoever runs it, so the results are the same bits as with the workers.
//
// Used only by the thread holding the pool's run mutex: no field needs to be atomic.
#pragma once

#include <algorithm>
#include <chrono>

namespace fastmlp {

class LateWorkers {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kLateMicroseconds{500};
  static constexpr clock::duration kMinSerial = std::chrono::milliseconds(2);
  static constexpr clock::duration kMaxSerial = std::chrono::milliseconds(500);
  static constexpr clock::duration kCalm = std::chrono::milliseconds(500);

  // Whether a job starting at `now` runs on the caller alone.
  bool serial(clock::time_point now) const { return now < serial_until_; }

  // After a pooled job that ended at `now`: `own` from its start until the caller found no task
  // left to claim, `waited` from then until every task was done.
  void note(clock::time_point now, clock::duration own, clock::duration waited) {
    if (waited <= std::max<clock::duration>(kLateMicroseconds, own)) return;
    // Late again soon after the last serial period: the workers are still not running beside us.
    period_ = now - resumed_ < kCalm ? std::min(2 * period_, kMaxSerial) : kMinSerial;
    serial_until_ = now + period_;
    resumed_ = serial_until_;
  }

 private:
  clock::duration period_ = kMinSerial;
  clock::time_point serial_until_{};  // jobs before it run on the caller alone
  clock::time_point resumed_{};       // when the last serial period ended
};

}  // namespace fastmlp
