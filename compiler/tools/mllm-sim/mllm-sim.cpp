//===- mllm-sim.cpp - simulate one training iteration of a plan -----------===//
//
// Plans a .mllm spec as mllmc does (or reads a planned mllm module), builds
// the pipeline graph, generates and verifies the schedule, and simulates
// one iteration (docs/sim.md). Exit codes: 0 success, 1 user error
// (diagnostics printed), 2 internal error.
//
//===----------------------------------------------------------------------===//
#include "mllm/Dialect/MLLM/IR/MLLMDialect.h"
#include "mllm/Dialect/MLLM/IR/MLLMOps.h"
#include "mllm/Dialect/Sched/IR/SchedDialect.h"
#include "mllm/Dialect/Sched/IR/SchedOps.h"
#include "mllm/Driver/Driver.h"
#include "mllm/Driver/PlanBuilder.h"
#include "mllm/Plan/Profile.h"
#include "mllm/Sim/Trace.h"
#include "mllm/Tools/RegisterMllm.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <chrono>

using namespace mllm;
namespace cl = llvm::cl;
using sched::ScheduleKind;

namespace {
cl::OptionCategory category("mllm-sim options");
cl::opt<std::string> inputFile(cl::Positional,
                               cl::desc("<spec.mllm | job.mlir | plan.yaml>"),
                               cl::Required, cl::cat(category));
cl::opt<std::string> outputFile("o", cl::desc("Output file (default stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));
cl::opt<bool> emitJson("json", cl::desc("Print the results as JSON"),
                       cl::init(false), cl::cat(category));
cl::opt<std::string>
    traceFile("trace",
              cl::desc("Write a Chrome trace (JSON; opens in Perfetto)"),
              cl::value_desc("file"), cl::init(""), cl::cat(category));
cl::opt<int64_t> traceMaxRanks(
    "trace-max-ranks",
    cl::desc("In --trace, one thread per rank up to this many ranks in all, "
             "else one thread per stage named after its rank range (0: no "
             "limit)"),
    cl::value_desc("n"), cl::init(sched::kDefaultTraceMaxRanks),
    cl::cat(category));
cl::opt<std::string> svgFile("svg", cl::desc("Write an SVG timeline"),
                             cl::value_desc("file"), cl::init(""),
                             cl::cat(category));
cl::opt<bool> compare(
    "compare",
    cl::desc("Re-plan with the frozen_aware, frozen_unaware and uniform "
             "partitions and simulate each, plus the Megatron-like baseline "
             "(linear_1f1b on the frozen_unaware partition), side by side"),
    cl::init(false), cl::cat(category));
cl::opt<bool> speed("speed",
                    cl::desc("Print the simulator's speed (events per "
                             "second) to standard error"),
                    cl::init(false), cl::cat(category));

std::string scheduleName(ScheduleKind kind) {
  return sched::stringifyScheduleKind(kind).str();
}

/// The shared front-end options (-I, --stdlib, --profile, --schedule).
DriverOptions *options = nullptr;

constexpr double GiB = 1024.0 * 1024.0 * 1024.0;

/// An error of the tool itself (not located in the input).
int fail(int rc, const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "mllm-sim") << message << "\n";
  return rc;
}

/// One simulated plan.
struct Run {
  std::string variant;   ///< "frozen-aware", ... (--compare) or "".
  std::string partition; ///< The mllm.pipeline's policy.
  ScheduleKind kind = ScheduleKind::MultimodalOneFOneB;
  sched::PipelineGraph graph;
  sched::SimResult result;
  double simSeconds = 0; ///< Wall time of simulate().
  std::string error;     ///< Why the variant has no result (--compare).
};

/// Simulates the plan's schedule. A failure on a plan the compiler
/// accepted is the compiler's bug: exit 2.
int simulatePlan(const runtime::Plan &plan, Run &run) {
  const runtime::PlanSchedule &schedule = *plan.schedule;
  run.kind = *sched::symbolizeScheduleKind(schedule.kind);
  run.partition = plan.job.partition;
  run.graph = schedule.graph;
  sched::SimOptions simOptions;
  simOptions.memoryBandwidth = plan.job.memoryBandwidth;
  simOptions.recordEvents = !traceFile.empty() || !svgFile.empty();
  auto start = std::chrono::steady_clock::now();
  auto result = sched::simulate(run.graph, schedule.programs, simOptions);
  run.simSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!result) {
    run.error = "internal error: " + llvm::toString(result.takeError());
    return 2;
  }
  run.result = std::move(*result);
  return 0;
}

int64_t gpusOf(const sched::StageInfo &s) {
  return std::max<int64_t>(s.tp, 1) * std::max<int64_t>(s.cp, 1) *
         std::max<int64_t>(s.dp, 1);
}

/// The idle fraction of all GPUs: 1 - sum(busy x GPUs) / (iteration x
/// world size).
double meanBubble(const Run &run) {
  const auto &r = run.result;
  if (r.iterationTime <= 0 || r.worldSize <= 0)
    return 0;
  double busy = 0;
  for (size_t s = 0; s < r.stages.size(); ++s)
    busy += r.stages[s].busy * static_cast<double>(gpusOf(run.graph.stages[s]));
  return 1 - busy / (r.iterationTime * static_cast<double>(r.worldSize));
}

int64_t peakMemory(const Run &run) {
  int64_t peak = 0;
  for (const auto &s : run.result.stages)
    peak = std::max(peak, s.peakMemory);
  return peak;
}

//===----------------------------------------------------------------------===//
// Output
//===----------------------------------------------------------------------===//

/// Left-aligned columns.
void printTable(llvm::raw_ostream &os,
                const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> width;
  for (const auto &row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (c >= width.size())
        width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  for (const auto &row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size())
        line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    os << llvm::StringRef(line).rtrim() << "\n";
  }
}

std::string fmt(const char *format, double value) {
  std::string out;
  llvm::raw_string_ostream(out) << llvm::format(format, value);
  return out;
}

void printRun(const Run &run, llvm::raw_ostream &os) {
  const auto &g = run.graph;
  const auto &r = run.result;
  os << "mllm-sim: " << inputFile << ": schedule " << scheduleName(run.kind)
     << ", partition " << run.partition << ", " << g.stages.size()
     << " stages, " << g.microbatches << " microbatches, " << r.worldSize
     << " GPUs\n";
  os << llvm::format("iteration %.3f ms, %.1f tokens/s, MFU %.1f%%, %lld "
                     "events\n\n",
                     r.iterationTime * 1e3, r.tokensPerSecond, r.mfu * 100,
                     static_cast<long long>(r.eventsSimulated));
  std::vector<std::vector<std::string>> rows = {
      {"stage", "part", "GPUs", "F ms", "Bw ms", "Bd ms", "busy %", "comm %",
       "bubble %", "in flight", "peak GiB"}};
  for (size_t s = 0; s < r.stages.size(); ++s) {
    const auto &info = g.stages[s];
    const auto &st = r.stages[s];
    double it = r.iterationTime > 0 ? r.iterationTime : 1;
    rows.push_back(
        {info.name, info.part, std::to_string(gpusOf(info)),
         fmt("%.3f", st.fwd * 1e3), fmt("%.3f", st.bwdWeight * 1e3),
         fmt("%.3f", st.bwdInput * 1e3), fmt("%.1f", st.busy / it * 100),
         fmt("%.1f", st.comm / it * 100), fmt("%.1f", st.bubble * 100),
         std::to_string(st.maxInFlight), fmt("%.2f", st.peakMemory / GiB)});
  }
  printTable(os, rows);
}

void printCompare(const std::vector<Run> &runs, llvm::raw_ostream &os) {
  os << "mllm-sim: " << inputFile << ": partitions and schedules compared\n\n";
  double base =
      runs.empty() || !runs[0].error.empty() ? 0 : runs[0].result.iterationTime;
  std::vector<std::vector<std::string>> rows = {
      {"variant", "partition", "schedule", "iteration ms", "vs frozen-aware",
       "bubble %", "peak GiB", "tokens/s", "MFU %"}};
  for (const Run &run : runs) {
    if (!run.error.empty()) {
      rows.push_back({run.variant, run.partition, scheduleName(run.kind),
                      "cannot plan: " + run.error});
      continue;
    }
    const auto &r = run.result;
    rows.push_back(
        {run.variant, run.partition, scheduleName(run.kind),
         fmt("%.3f", r.iterationTime * 1e3),
         base > 0 ? fmt("%.3fx", r.iterationTime / base) : std::string("-"),
         fmt("%.1f", meanBubble(run) * 100), fmt("%.2f", peakMemory(run) / GiB),
         fmt("%.1f", r.tokensPerSecond), fmt("%.1f", r.mfu * 100)});
  }
  printTable(os, rows);
}

void runJson(llvm::json::OStream &j, const Run &run, bool withStages) {
  const auto &g = run.graph;
  const auto &r = run.result;
  if (!run.variant.empty())
    j.attribute("variant", run.variant);
  j.attribute("partition", run.partition);
  j.attribute("schedule", scheduleName(run.kind));
  if (!run.error.empty()) {
    j.attribute("error", run.error);
    return;
  }
  j.attribute("stages_count", static_cast<int64_t>(g.stages.size()));
  j.attribute("microbatches", g.microbatches);
  j.attribute("gpus", r.worldSize);
  j.attribute("iteration_ms", r.iterationTime * 1e3);
  j.attribute("tokens_per_s", r.tokensPerSecond);
  j.attribute("mfu", r.mfu);
  j.attribute("bubble", meanBubble(run));
  j.attribute("peak_memory_bytes", peakMemory(run));
  j.attribute("events", r.eventsSimulated);
  if (!withStages)
    return;
  j.attributeArray("stages", [&] {
    for (size_t s = 0; s < r.stages.size(); ++s) {
      const auto &info = g.stages[s];
      const auto &st = r.stages[s];
      j.object([&] {
        j.attribute("name", info.name);
        j.attribute("part", info.part);
        j.attribute("gpus", gpusOf(info));
        j.attribute("fwd_ms", st.fwd * 1e3);
        j.attribute("bwd_weight_ms", st.bwdWeight * 1e3);
        j.attribute("bwd_input_ms", st.bwdInput * 1e3);
        j.attribute("busy_ms", st.busy * 1e3);
        j.attribute("comm_ms", st.comm * 1e3);
        j.attribute("bubble", st.bubble);
        j.attribute("max_in_flight", st.maxInFlight);
        j.attribute("peak_memory_bytes", st.peakMemory);
      });
    }
  });
}

//===----------------------------------------------------------------------===//
// Input
//===----------------------------------------------------------------------===//

/// Re-plans a copy of `module` with another partition policy (the
/// mllm.parallel op's `partition`; explicit `stages` lists are dropped),
/// schedules it with `kind` and simulates it. Diagnostics of the re-plan
/// are collected, not printed.
void replan(mlir::ModuleOp module, PartitionPolicy policy, ScheduleKind kind,
            llvm::StringRef variant, Run &run) {
  run.variant = variant.str();
  run.kind = kind;
  run.partition = stringifyPartitionPolicy(policy).str();
  mlir::OwningOpRef<mlir::ModuleOp> copy = module.clone();
  // The copy is re-planned from scratch: drop what the passes recorded.
  for (mlir::Operation &op : llvm::make_early_inc_range(copy->getOps()))
    if (mlir::isa<PipelineOp, CPAssignmentOp, sched_ir::ScheduleOp>(op))
      op.erase();
  for (auto parallel : copy->getOps<ParallelOp>()) {
    parallel.setPartition(policy);
    for (auto mp : parallel.getBody().front().getOps<ModuleParallelOp>())
      mp.removeStagesAttr();
  }
  std::string errors;
  mlir::ScopedDiagnosticHandler capture(
      module->getContext(), [&](mlir::Diagnostic &diag) {
        if (diag.getSeverity() == mlir::DiagnosticSeverity::Error &&
            errors.empty())
          errors = diag.str();
        return mlir::success();
      });
  if (failed(runPipelines(*copy, *options, kind))) {
    run.error = errors.empty() ? "the plan pipeline failed" : errors;
    return;
  }
  auto plan = buildPlan(*copy);
  if (!plan) {
    run.error = "internal error: " + llvm::toString(plan.takeError());
    return;
  }
  if (simulatePlan(*plan, run) != 0 && run.error.empty())
    run.error = "simulation failed";
}

int writeFile(llvm::StringRef path,
              llvm::function_ref<void(llvm::raw_ostream &)> write) {
  std::string error;
  auto file = mlir::openOutputFile(path, &error);
  if (!file)
    return fail(1, error);
  write(file->os());
  file->keep();
  return 0;
}

/// `path` with `variant` before its extension: t.svg -> t.uniform.svg.
std::string variantPath(llvm::StringRef path, llvm::StringRef variant) {
  llvm::StringRef ext = llvm::sys::path::extension(path);
  return (path.drop_back(ext.size()) + "." + variant + ext).str();
}

int writeTimelines(const Run &run, llvm::StringRef variant) {
  auto name = [&](llvm::StringRef path) {
    return variant.empty() ? path.str() : variantPath(path, variant);
  };
  if (!traceFile.empty())
    if (int rc = writeFile(name(traceFile), [&](llvm::raw_ostream &out) {
          sched::writeChromeTrace(run.graph, run.result, out, traceMaxRanks);
        }))
      return rc;
  if (!svgFile.empty())
    if (int rc = writeFile(name(svgFile), [&](llvm::raw_ostream &out) {
          sched::writeSvg(run.graph, run.result, out);
        }))
      return rc;
  return 0;
}

int simMain(mlir::MLIRContext &context) {
  std::string error;
  auto input = mlir::openInputFile(inputFile, &error);
  if (!input)
    return fail(1, error);
  llvm::SourceMgr srcMgr;
  srcMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler handler(srcMgr, &context);

  runtime::Plan plan;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (int rc = loadPlan(context, srcMgr, inputFile, *options, plan, error,
                        &module)) {
    if (!error.empty())
      llvm::errs() << error << "\n";
    return rc;
  }

  auto output = mlir::openOutputFile(outputFile, &error);
  if (!output)
    return fail(1, error);
  llvm::raw_ostream &os = output->os();

  if (compare) {
    if (!module)
      return fail(1, "--compare re-plans the job, so it needs the spec or "
                     "its .mlir, not a plan file");
    std::vector<Run> runs(4);
    replan(*module, PartitionPolicy::FrozenAware,
           ScheduleKind::MultimodalOneFOneB, "frozen-aware", runs[0]);
    replan(*module, PartitionPolicy::FrozenUnaware,
           ScheduleKind::MultimodalOneFOneB, "frozen-unaware", runs[1]);
    replan(*module, PartitionPolicy::Uniform, ScheduleKind::MultimodalOneFOneB,
           "uniform", runs[2]);
    replan(*module, PartitionPolicy::FrozenUnaware,
           ScheduleKind::LinearOneFOneB, "megatron-like", runs[3]);
    // A simulator failure on an accepted plan is ours, not the user's.
    for (const Run &run : runs)
      if (llvm::StringRef(run.error).starts_with("internal error"))
        return fail(2, run.variant + ": " + run.error);
    if (emitJson) {
      llvm::json::OStream j(os, 2);
      j.object([&] {
        j.attribute("input", inputFile);
        j.attributeArray("compare", [&] {
          for (const Run &run : runs)
            j.object([&] { runJson(j, run, /*withStages=*/false); });
        });
      });
      os << "\n";
    } else {
      printCompare(runs, os);
    }
    for (const Run &run : runs)
      if (run.error.empty())
        if (int rc = writeTimelines(run, run.variant))
          return rc;
    if (speed)
      for (const Run &run : runs)
        if (run.error.empty())
          llvm::errs() << llvm::format(
              "mllm-sim: %s: %lld events in %.3f ms (%.1f M events/s)\n",
              run.variant.c_str(),
              static_cast<long long>(run.result.eventsSimulated),
              run.simSeconds * 1e3,
              run.simSeconds > 0
                  ? run.result.eventsSimulated / run.simSeconds / 1e6
                  : 0.0);
    output->keep();
    return 0;
  }

  Run run;
  if (int rc = simulatePlan(plan, run))
    return fail(rc, run.error);
  if (emitJson) {
    llvm::json::OStream j(os, 2);
    j.object([&] {
      j.attribute("input", inputFile);
      runJson(j, run, /*withStages=*/true);
    });
    os << "\n";
  } else {
    printRun(run, os);
  }
  if (speed)
    llvm::errs() << llvm::format(
        "mllm-sim: %lld events in %.3f ms (%.1f M events/s)\n",
        static_cast<long long>(run.result.eventsSimulated),
        run.simSeconds * 1e3,
        run.simSeconds > 0 ? run.result.eventsSimulated / run.simSeconds / 1e6
                           : 0.0);
  if (int rc = writeTimelines(run, ""))
    return rc;
  output->keep();
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  DriverOptions driverOptions(category);
  options = &driverOptions;
  cl::HideUnrelatedOptions({&category, &cl::getGeneralCategory()});
  cl::ParseCommandLineOptions(
      argc, argv,
      "mllm-sim - simulate one training iteration of a planned job\n\n"
      "  mllm-sim spec.mllm                 plan as mllmc does, simulate, "
      "print a table\n"
      "  mllm-sim job.mlir                  a module from mllmc "
      "--emit=mllm|sched\n"
      "  mllm-sim plan.yaml                 a plan from mllmc --emit=plan\n"
      "  mllm-sim spec.mllm --json          the results as JSON\n"
      "  mllm-sim spec.mllm --trace t.json  Chrome trace (Perfetto)\n"
      "  mllm-sim spec.mllm --svg t.svg     timeline picture\n"
      "  mllm-sim spec.mllm --compare       frozen-aware vs frozen-unaware vs "
      "uniform vs Megatron-like\n\n"
      "Exit status: 0 ok, 1 error in the input, 2 internal error.\n");

  // A bad profile is the user's error, reported once and up front.
  if (!checkProfile(driverOptions, "mllm-sim"))
    return 1;

  registerAllMllmPasses();
  registerAllSchedPasses();
  mlir::DialectRegistry registry;
  registerAllMllmDialects(registry);
  registerSchedDialect(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  context.printOpOnDiagnostic(false);
  return simMain(context);
}
