//===- SimTool.h - what mllm-sim's files share ------------------*- C++ -*-===//
//
// One simulated plan (Run), its reports (table and JSON) and the --compare
// variants. mllm-sim.cpp holds the options and the single run.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TOOLS_MLLM_SIM_SIMTOOL_H
#define MLLM_TOOLS_MLLM_SIM_SIMTOOL_H

#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Driver/Driver.h"
#include "mllm/Sim/Simulate.h"
#include "mllm/runtime/Plan.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>
#include <vector>

namespace mllm::simtool {

/// One simulated plan.
struct Run {
  std::string variant;   ///< "frozen-aware", ... (--compare) or "".
  std::string partition; ///< The mllm.pipeline's policy.
  std::string layout, cpBalance;
  sched::ScheduleKind kind = sched::ScheduleKind::MultimodalOneFOneB;
  sched::PipelineGraph graph;
  sched::SimResult result;
  double estimateMs = 0; ///< mllmc's estimate (mllm.pipeline).
  double simSeconds = 0; ///< Wall time of simulate().
  /// Why the variant has no result (--compare), or the failure of a run.
  std::string error;
  /// The error is ours (an accepted plan that does not simulate): exit 2.
  bool internal = false;
};

/// Checks the plan (finite times, memory under its schedule's rule) and
/// simulates it into `run`. Returns 0, 1 (the plan's fault: a stage time
/// that is not finite, a schedule that does not fit; run.error says why)
/// or 2 (internal).
int simulatePlan(const runtime::Plan &plan, Run &run, bool recordEvents);

/// The compared variants of a planned module (docs/sim.md, "--compare").
std::vector<Run> compareVariants(mlir::ModuleOp module,
                                 const DriverOptions &options);

void printRun(const Run &run, llvm::StringRef input, llvm::raw_ostream &os);
void printCompare(const std::vector<Run> &runs, llvm::StringRef input,
                  llvm::raw_ostream &os);
/// The fields of `run` into the current JSON object; numbers that are not
/// finite are written as null.
void runJson(llvm::json::OStream &j, const Run &run, bool withStages);

} // namespace mllm::simtool

#endif // MLLM_TOOLS_MLLM_SIM_SIMTOOL_H
