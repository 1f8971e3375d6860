// When to run a job's tasks on the calling thread alone because the host is not running the
// pool's threads together.
//
// A task a worker has claimed is finished only by that worker. On a machine with more runnable
// threads than cores (neighbour processes, other fits), the host preempts a worker in the middle
// of its task now and then, and the caller, done with its own tasks, waits for it a whole time
// slice of someone else (milliseconds, against tasks of tens of microseconds); the wait's yields
// hand the caller's core to the neighbours too. A 1-thread fit never waits for anyone. So the
// caller notes after each pooled job whether it waited for a late worker (longer than
// kLateMicroseconds and longer than it took to run out of tasks itself: a late wake-up or an
// imbalance on a quiet machine costs less). Two late jobs among the last 16 pooled ones, or one
// within a serial period's length after that period ended, make the next jobs run on the caller
// alone for a period (kMinSerial, doubled for each late job right after a serial period, up to
// kMaxSerial): a probe of the workers then costs one late job per period. The busy pool's path
// runs them (every task on the caller, in task order), and each task has fixed content whoever
// runs it, so the results are the same bits as with the workers.
//
// Used only by the thread holding the pool's run mutex: no field needs to be atomic.
#pragma once

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cstdint>

namespace fastmlp {

class LateWorkers {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kLateMicroseconds{100};
  static constexpr clock::duration kMinSerial = std::chrono::milliseconds(2);
  static constexpr clock::duration kMaxSerial = std::chrono::milliseconds(500);

  // Whether a job starting at `now` runs on the caller alone.
  bool serial(clock::time_point now) const { return now < serial_until_; }

  // After a pooled job that ended at `now`: `own` from its start until the caller found no task
  // left to claim, `waited` from then until every task was done.
  void note(clock::time_point now, clock::duration own, clock::duration waited) {
    const bool late = waited > std::max<clock::duration>(kLateMicroseconds, own);
    history_ = history_ << 1 | std::uint32_t(late);
    if (!late) return;
    if (now - resumed_ < period_) {
      period_ = std::min(2 * period_, kMaxSerial);  // the workers are still not running beside us
    } else if (std::bitset<16>(history_).count() >= 2) {
      period_ = kMinSerial;
    } else {
      return;
    }
    serial_until_ = now + period_;
    resumed_ = serial_until_;
    history_ = 0;
  }

 private:
  std::uint32_t history_ = 0;  // one bit per recent pooled job, the latest lowest: was it late
  clock::duration period_ = kMinSerial;
  clock::time_point serial_until_{};  // jobs before it run on the caller alone
  clock::time_point resumed_{};       // when the last serial period ended
};

}  // namespace fastmlp
