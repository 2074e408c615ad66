//===- Variants.cpp - simulate a plan, and the --compare variants ---------===//
//
// A plan is simulated only after two checks that make its figures honest:
// every stage time is finite (else the JSON would hold inf), and every
// stage fits its GPU under the plan's schedule with the memory check's
// rule (the baseline schedules hold what their warm-ups say, and used to
// report peaks above the GPU's memory without a word).
//
//===----------------------------------------------------------------------===//
#include "SimTool.h"

#include "mllm/Sched/ArenaFit.h"

#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/Driver/PlanBuilder.h"

#include "mlir/IR/Diagnostics.h"

#include <chrono>
#include <cmath>

using namespace mllm;
using namespace mllm::simtool;
using sched::ScheduleKind;

namespace {

/// An error naming the first stage time that is not a finite, non-negative
/// number of seconds.
std::string checkFinite(const sched::PipelineGraph &graph) {
  for (const sched::StageInfo &s : graph.stages)
    for (auto [name, value] : {std::pair<const char *, double>{"fwd", s.fwd},
                               {"bwd_input", s.bwdInput},
                               {"bwd_weight", s.bwdWeight},
                               {"recompute", s.recompute}})
      if (!std::isfinite(value) || value < 0)
        return "stage '" + s.name + "' has the time " + name + " = " +
               std::to_string(value) +
               " s; a simulation needs finite, non-negative times";
  return "";
}

} // namespace

int mllm::simtool::simulatePlan(const runtime::Plan &plan, Run &run,
                                bool recordEvents) {
  const runtime::PlanSchedule &schedule = *plan.schedule;
  run.kind = *sched::symbolizeScheduleKind(schedule.kind);
  run.partition = plan.job.partition;
  run.layout = plan.job.layout;
  run.cpBalance = plan.job.cpBalance;
  run.estimateMs = plan.pipeline.iterationMs;
  run.graph = schedule.graph;
  run.error = checkFinite(run.graph);
  if (!run.error.empty())
    return 1;
  if (llvm::Error e = sched::checkPlanMemory(plan)) {
    run.error = llvm::toString(std::move(e));
    return 1;
  }
  sched::SimOptions simOptions;
  simOptions.memoryBandwidth = plan.job.memoryBandwidth;
  simOptions.recordEvents = recordEvents;
  auto start = std::chrono::steady_clock::now();
  auto result = sched::simulate(run.graph, schedule.programs, simOptions);
  run.simSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!result) {
    // A failure on a plan the compiler accepted is the compiler's bug.
    run.error = "internal error: " + llvm::toString(result.takeError());
    run.internal = true;
    return 2;
  }
  run.result = std::move(*result);
  return 0;
}

namespace {

/// One compared variant: what is set on a copy of the planned module.
struct Variant {
  explicit Variant(const char *name,
                   PartitionPolicy partition = PartitionPolicy::FrozenAware,
                   ScheduleKind kind = ScheduleKind::MultimodalOneFOneB)
      : name(name), partition(partition), kind(kind) {}
  const char *name;
  PartitionPolicy partition;
  ScheduleKind kind;
  std::optional<EncoderLayout> layout;
  std::optional<CPBalance> cpBalance;
};

/// Re-plans a copy of `module` as `v` says (the mllm.parallel op's policies;
/// explicit `stages` lists are dropped; the chain layout sets pp = auto for
/// every part, a chain choosing its own cuts), schedules it and simulates
/// it. Diagnostics of the re-plan are collected, not printed.
Run replan(mlir::ModuleOp module, const DriverOptions &options,
           const Variant &v) {
  Run run;
  run.variant = v.name;
  run.kind = v.kind;
  run.partition = stringifyPartitionPolicy(v.partition).str();
  mlir::OwningOpRef<mlir::ModuleOp> copy = module.clone();
  // The copy is re-planned from scratch: drop what the passes recorded.
  for (mlir::Operation &op : llvm::make_early_inc_range(copy->getOps()))
    if (mlir::isa<PipelineOp, CPAssignmentOp, sched_ir::ScheduleOp>(op))
      op.erase();
  for (auto parallel : copy->getOps<ParallelOp>()) {
    parallel.setPartition(v.partition);
    if (v.layout)
      parallel.setLayout(*v.layout);
    if (v.cpBalance)
      parallel.setCpBalance(*v.cpBalance);
    run.layout = stringifyEncoderLayout(parallel.getLayout()).str();
    run.cpBalance = stringifyCPBalance(parallel.getCpBalance()).str();
    for (auto mp : parallel.getBody().front().getOps<ModuleParallelOp>()) {
      mp.removeStagesAttr();
      if (v.layout == EncoderLayout::Chain)
        mp.setPp(0);
    }
  }
  std::string errors;
  mlir::ScopedDiagnosticHandler capture(
      module->getContext(), [&](mlir::Diagnostic &diag) {
        if (diag.getSeverity() == mlir::DiagnosticSeverity::Error &&
            errors.empty())
          errors = diag.str();
        return mlir::success();
      });
  // The schedule is generated and verified in memory (buildPlan), as for
  // --emit=plan.
  if (failed(runPipelines(*copy, options, std::nullopt))) {
    run.error = errors.empty() ? "the plan pipeline failed" : errors;
    return run;
  }
  auto plan = buildPlan(*copy, "", "", v.kind);
  if (!plan) {
    run.error = "internal error: " + llvm::toString(plan.takeError());
    run.internal = true;
    return run;
  }
  (void)simulatePlan(*plan, run, /*recordEvents=*/true);
  return run;
}

} // namespace

std::vector<Run> mllm::simtool::compareVariants(mlir::ModuleOp module,
                                                const DriverOptions &options) {
  std::vector<Variant> variants = {
      Variant("frozen-aware"),
      Variant("frozen-unaware", PartitionPolicy::FrozenUnaware),
      Variant("uniform", PartitionPolicy::Uniform),
      Variant("megatron-like", PartitionPolicy::FrozenUnaware,
              ScheduleKind::LinearOneFOneB),
      Variant("gpipe", PartitionPolicy::FrozenAware, ScheduleKind::GPipe)};
  auto parallel = getFirst<ParallelOp>(module);
  auto model = getFirst<ModelOp>(module);
  // The other encoder layouts, when there are encoders to lay out.
  bool encoders = model && !model.getBody().front().getOps<EncoderOp>().empty();
  EncoderLayout own = parallel ? parallel.getLayout() : EncoderLayout::Parallel;
  const std::pair<EncoderLayout, const char *> layouts[] = {
      {EncoderLayout::Parallel, "parallel"},
      {EncoderLayout::Colocated, "colocated"},
      {EncoderLayout::Chain, "chain"}};
  for (auto [layout, name] : layouts)
    if (encoders && layout != own) {
      Variant v(name);
      v.layout = layout;
      variants.push_back(v);
    }
  // The other CP policies, when the LLM splits its sequence.
  ModuleParallelOp llm = parallel && model && model.getLLM()
                             ? parallel.lookupPart(model.getLLM().getSymName())
                             : ModuleParallelOp();
  if (llm && llm.getCp() > 1) {
    const std::pair<CPBalance, const char *> policies[] = {
        {CPBalance::LPT, "cp-lpt"},
        {CPBalance::ILP, "cp-ilp"},
        {CPBalance::Zigzag, "cp-zigzag"},
        {CPBalance::Uniform, "cp-uniform"}};
    for (auto [policy, name] : policies)
      if (policy != parallel.getCpBalance()) {
        Variant v(name);
        v.cpBalance = policy;
        variants.push_back(v);
      }
  }
  std::vector<Run> runs;
  for (const Variant &v : variants)
    runs.push_back(replan(module, options, v));
  return runs;
}
