// The training-step table, best first: the first entry that can run a step and pays for it
// runs it. Adding a strategy is one file of its own and one line here.
#include "fastmlp/steps.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace fastmlp {

namespace {

// The widest layer for which a row split pays: wider, each thread of the column split packs and
// streams only its share of the weights, while each part of a row split reads all of them.
constexpr std::size_t kMaxRowSplitUnits = 256;

struct StepEntry {
  StepKind kind;
  const char* name;
  // Whether it can give this step's bits at all (what forcing it cannot override).
  bool (*can_run)(const StepFacts&);
  // Whether it is expected to be the fastest of those that can (the measured thresholds).
  bool (*pays)(const StepFacts&);
};

bool always(const StepFacts&) { return true; }

// Row splits pay with a second thread to share the rows, and only for narrow layers.
bool row_split_pays(const StepFacts& f) { return f.threads >= 2 && f.widest_layer <= kMaxRowSplitUnits; }

const StepEntry kSteps[] = {
    // One row: matrix-vector products straight from the sample's row, no gathering, packing or
    // pool. One thread: for narrow layers a row split would run one part too; wider ones, the
    // column split shares each product between the threads.
    {StepKind::vector, "vector", [](const StepFacts& f) { return f.vector_fits; },
     [](const StepFacts& f) { return f.threads == 1 || f.widest_layer <= kMaxRowSplitUnits; }},
    // Sparse inputs: each part lists and updates only its own input columns, so the first
    // kernel stays in its core's cache; its parts wait for each other, so it needs 2+ parts.
    {StepKind::pipeline, "pipeline", [](const StepFacts& f) { return f.row_split_fits && f.pipeline_fits && f.parts >= 2; },
     [](const StepFacts& f) { return row_split_pays(f) && f.last_step_sparse; }},
    // Narrow layers: two barriers per step instead of one per layer and phase.
    {StepKind::rows, "rows", [](const StepFacts& f) { return f.row_split_fits; }, row_split_pays},
    // Anything, dropout and batch normalization included (its masks are drawn in one sequence,
    // its statistics need all of a batch's rows at once): the fallback.
    {StepKind::columns, "columns", always, always},
};
constexpr int kNumSteps = int(sizeof(kSteps) / sizeof(kSteps[0]));

// A part's share of a batch must outweigh what a second thread costs a step: two joins, and
// every part reading the whole weights. Below about a million multiply-adds a second thread
// gained nothing (a 54-100-7 network at batch 200: 1.02x; at batch 64: 0.70x), so a smaller batch
// runs on the caller alone, which also keeps a small fit from waiting for a preempted worker on
// a busy machine.
constexpr std::size_t kDefaultMinRowPartWork = std::size_t(1) << 20;
std::atomic<std::size_t> g_min_row_part_work{kDefaultMinRowPartWork};

// The forced entry's index, or -1 (auto).
std::atomic<int> g_forced{-1};

std::string names() {
  std::string out;
  for (const StepEntry& e : kSteps) out += std::string(out.empty() ? "" : ", ") + e.name;
  return out;
}

int index_of(StepKind kind) {
  for (int i = 0; i < kNumSteps; ++i)
    if (kSteps[i].kind == kind) return i;
  return kNumSteps - 1;
}

}  // namespace

StepKind choose_step(const StepFacts& facts) {
  const int forced = g_forced.load(std::memory_order_relaxed);
  for (int i = forced < 0 ? 0 : forced; i < kNumSteps; ++i)
    if (kSteps[i].can_run(facts) && (forced >= 0 || kSteps[i].pays(facts))) return kSteps[i].kind;
  return StepKind::columns;
}

StepKind fallback_step(StepKind failed, const StepFacts& facts) {
  for (int i = index_of(failed) + 1; i < kNumSteps; ++i)
    if (kSteps[i].can_run(facts)) return kSteps[i].kind;
  return StepKind::columns;
}

const char* step_name(StepKind kind) { return kSteps[index_of(kind)].name; }

std::vector<std::string> available_steps() {
  std::vector<std::string> out;
  for (const StepEntry& e : kSteps) out.emplace_back(e.name);
  return out;
}

std::string active_step() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  return forced < 0 ? "auto" : kSteps[forced].name;
}

void set_step(const std::string& name) {
  if (name == "auto") {
    g_forced.store(-1);
    return;
  }
  for (int i = 0; i < kNumSteps; ++i) {
    if (name == kSteps[i].name) {
      g_forced.store(i);
      return;
    }
  }
  throw std::invalid_argument("unknown training step '" + name + "'; available: " + names() + " (or auto)");
}

std::size_t min_row_part_work() { return g_min_row_part_work.load(std::memory_order_relaxed); }

void set_min_row_part_work(std::size_t n) {
  if (n == 0) throw std::invalid_argument("min_row_part_work must be at least 1, got 0");
  g_min_row_part_work.store(n, std::memory_order_relaxed);
}

void select_step_from_environment() {
  const char* forced = std::getenv("FASTMLP_STEP");
  if (forced == nullptr || *forced == '\0') return set_step("auto");
  try {
    set_step(forced);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("FASTMLP_STEP: ") + e.what());
  }
}

}  // namespace fastmlp
