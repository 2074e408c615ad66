//===- Fit.cpp - does a schedule fit in GPU memory ------------------------===//
//
// One rule for every schedule kind: the memory-aware multimodal 1F1B caps
// its stages to fit (mllm-rank-map reports what cannot), but the baselines
// (linear_1f1b, gpipe) hold what their warm-up says; a plan compared or
// simulated under them must not claim a peak the GPU does not have.
//
//===----------------------------------------------------------------------===//
#include "mllm/Sched/Generate.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mllm::sched;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string gib(double bytes) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%.2f", bytes / kGiB) << " GiB";
  return s;
}

} // namespace

llvm::Error mllm::sched::checkMemory(const PipelineGraph &graph,
                                     const std::vector<Program> &programs,
                                     ScheduleKind kind) {
  std::string first;
  size_t over = 0;
  for (const Program &program : programs) {
    if (program.stage < 0 ||
        static_cast<size_t>(program.stage) >= graph.stages.size())
      continue;
    const StageInfo &s = graph.stages[program.stage];
    if (s.memoryCapacity <= 0)
      continue;
    // A program without a backward keeps nothing for one.
    int64_t held = s.hasBackward() ? program.maxInFlight : 0;
    double act = static_cast<double>(s.activationBytesPerMicrobatch);
    double need = static_cast<double>(s.staticBytes) + act * held;
    if (need <= static_cast<double>(s.memoryCapacity))
      continue;
    if (over++ > 0)
      continue;
    llvm::raw_string_ostream os(first);
    os << "stage '" << s.name << "' needs " << gib(need)
       << " per GPU under the " << stringifyScheduleKind(kind)
       << " schedule but a GPU has "
       << gib(static_cast<double>(s.memoryCapacity)) << ": static "
       << gib(static_cast<double>(s.staticBytes)) << " + activations "
       << gib(act * held) << " (" << gib(act) << " x " << held
       << (held == 1 ? " microbatch" : " microbatches") << " in flight)";
  }
  if (over == 0)
    return llvm::Error::success();
  if (over > 1)
    first += "; " + std::to_string(over) + " of " +
             std::to_string(programs.size()) + " stages do not fit";
  return llvm::createStringError(llvm::inconvertibleErrorCode(), first);
}
