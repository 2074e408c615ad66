//===- mllm-sim.cpp - simulate one training iteration of a plan -----------===//
//
// Plans a .mllm spec as mllmc does (or reads a planned mllm module or a
// plan file), checks that the plan can run (finite times, every stage fits
// its GPU under the schedule), simulates one iteration and reports it
// (docs/sim.md); --compare re-plans variants (SimTool.h). Outputs are
// written atomically. Exit codes: 0 success, 1 user error (diagnostics
// printed), 2 internal error.
//
//===----------------------------------------------------------------------===//
#include "SimTool.h"

#include "mllm/Dialect/MLLM/IR/MLLMDialect.h"
#include "mllm/Dialect/Sched/IR/SchedDialect.h"
#include "mllm/Sim/Trace.h"
#include "mllm/Support/SourceLineHandler.h"
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
#include "llvm/Support/WithColor.h"

using namespace mllm;
namespace cl = llvm::cl;

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
             "limit; default 256)"),
    cl::value_desc("n"), cl::init(sched::kDefaultTraceMaxRanks),
    cl::cat(category));
cl::opt<std::string> svgFile("svg", cl::desc("Write an SVG timeline"),
                             cl::value_desc("file"), cl::init(""),
                             cl::cat(category));
cl::opt<bool> compare(
    "compare",
    cl::desc("Re-plan with every partition policy, the Megatron-like and "
             "GPipe schedules, the other encoder layouts and (with cp > 1) "
             "the other CP policies, and simulate each side by side"),
    cl::init(false), cl::cat(category));
cl::opt<bool> speed("speed",
                    cl::desc("Print the simulator's speed (events per "
                             "second) to standard error"),
                    cl::init(false), cl::cat(category));

/// The shared front-end options (-I, --stdlib, --profile, --schedule).
DriverOptions *options = nullptr;

/// An error of the tool itself (not located in the input).
int fail(int rc, const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "mllm-sim") << message << "\n";
  return rc;
}

int fail(llvm::Error error) {
  return fail(1, llvm::toString(std::move(error)));
}

/// `path` with `variant` before its extension: t.svg -> t.uniform.svg.
std::string variantPath(llvm::StringRef path, llvm::StringRef variant) {
  llvm::StringRef ext = llvm::sys::path::extension(path);
  return (path.drop_back(ext.size()) + "." + variant + ext).str();
}

/// The trace and SVG of a run, each written whole and atomically.
int writeTimelines(const simtool::Run &run, llvm::StringRef variant) {
  auto name = [&](llvm::StringRef path) {
    return variant.empty() ? path.str() : variantPath(path, variant);
  };
  auto write = [&](llvm::StringRef path,
                   llvm::function_ref<void(llvm::raw_ostream &)> render) {
    std::string text;
    llvm::raw_string_ostream os(text);
    render(os);
    if (llvm::Error e = checkOutputNotInput(path, {inputFile.getValue()}))
      return fail(std::move(e));
    if (llvm::Error e = writeOutputAtomically(path, text))
      return fail(std::move(e));
    return 0;
  };
  if (!traceFile.empty())
    if (int rc = write(name(traceFile), [&](llvm::raw_ostream &os) {
          sched::writeChromeTrace(run.graph, run.result, os, traceMaxRanks);
        }))
      return rc;
  if (!svgFile.empty())
    if (int rc = write(name(svgFile), [&](llvm::raw_ostream &os) {
          sched::writeSvg(run.graph, run.result, os);
        }))
      return rc;
  return 0;
}

void printSpeed(const simtool::Run &run, llvm::StringRef label) {
  llvm::errs() << llvm::format(
      "mllm-sim: %s%s%lld events in %.3f ms (%.1f M events/s)\n",
      label.str().c_str(), label.empty() ? "" : ": ",
      static_cast<long long>(run.result.eventsSimulated), run.simSeconds * 1e3,
      run.simSeconds > 0 ? run.result.eventsSimulated / run.simSeconds / 1e6
                         : 0.0);
}

int compareMain(mlir::ModuleOp module, OutputFile &output) {
  std::vector<simtool::Run> runs = simtool::compareVariants(module, *options);
  // A simulator failure on an accepted plan is ours, not the user's.
  for (const simtool::Run &run : runs)
    if (run.internal)
      return fail(2, run.variant + ": " + run.error);
  llvm::raw_ostream &os = output.os();
  if (emitJson) {
    llvm::json::OStream j(os, 2);
    j.object([&] {
      j.attribute("input", inputFile);
      j.attributeArray("compare", [&] {
        for (const simtool::Run &run : runs)
          j.object([&] { simtool::runJson(j, run, /*withStages=*/false); });
      });
    });
    os << "\n";
  } else {
    simtool::printCompare(runs, inputFile, os);
  }
  for (const simtool::Run &run : runs)
    if (run.error.empty())
      if (int rc = writeTimelines(run, run.variant))
        return rc;
  if (speed)
    for (const simtool::Run &run : runs)
      if (run.error.empty())
        printSpeed(run, run.variant);
  if (llvm::Error e = output.commit())
    return fail(std::move(e));
  return 0;
}

int simMain(mlir::MLIRContext &context) {
  // Outputs are checked before anything is read or written.
  for (const std::string &out :
       {outputFile.getValue(), traceFile.getValue(), svgFile.getValue()})
    if (!out.empty())
      if (llvm::Error e = checkOutputNotInput(out, {inputFile.getValue()}))
        return fail(std::move(e));
  std::string error;
  auto input = mllm::openInputFile(inputFile, error);
  if (!input)
    return fail(1, error);
  llvm::SourceMgr srcMgr;
  srcMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  SourceLineHandler handler(srcMgr, &context);

  runtime::Plan plan;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (int rc = loadPlan(context, srcMgr, inputFile, *options, plan, error,
                        &module)) {
    if (!error.empty())
      llvm::errs() << error << "\n";
    return rc;
  }
  auto output = OutputFile::open(outputFile);
  if (!output)
    return fail(output.takeError());

  if (compare) {
    if (!module)
      return fail(1, "--compare re-plans the job, so it needs the spec or "
                     "its .mlir, not a plan file");
    return compareMain(*module, **output);
  }

  simtool::Run run;
  if (int rc = simtool::simulatePlan(plan, run,
                                     !traceFile.empty() || !svgFile.empty())) {
    if (rc == 1)
      return fail(1, "the plan cannot run: " + run.error);
    return fail(rc, run.error);
  }
  // Faster than the GPU's peak: the times are not this GPU's.
  if (run.result.mfu > 1)
    llvm::WithColor::warning(llvm::errs(), "mllm-sim")
        << llvm::format("MFU %.1f%% is above 100%%: the stages' times are "
                        "shorter than the cluster's GPUs can compute them at "
                        "their peak FLOP/s (a --profile measured on a faster "
                        "GPU, or wrong); the simulated times are the "
                        "profile's, the MFU is not meaningful\n",
                        run.result.mfu * 100);
  llvm::raw_ostream &os = (*output)->os();
  if (emitJson) {
    llvm::json::OStream j(os, 2);
    j.object([&] {
      j.attribute("input", inputFile);
      simtool::runJson(j, run, /*withStages=*/true);
    });
    os << "\n";
  } else {
    simtool::printRun(run, inputFile, os);
  }
  if (speed)
    printSpeed(run, "");
  if (int rc = writeTimelines(run, ""))
    return rc;
  if (llvm::Error e = (*output)->commit())
    return fail(std::move(e));
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  DriverOptions driverOptions(category);
  options = &driverOptions;
  hideUnrelatedOptions(category, llvm::ArrayRef<const char *>(argv, argc));
  setVersionPrinter("mllm-sim");
  if (!parseCommandLine(
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
          "  mllm-sim spec.mllm --compare       partitions, schedules, layouts "
          "and CP policies side by side\n\n"
          "Exit status: 0 ok, 1 error in the input, 2 internal error.\n"))
    return 1;
  if (!checkRepeatedOptions(category, "mllm-sim"))
    return 1;
  if (traceMaxRanks < 0)
    return fail(1, "--trace-max-ranks takes 0 (no limit) or more, not " +
                       llvm::Twine(traceMaxRanks.getValue()));
  // Two outputs into one file: one would silently replace the other.
  {
    std::vector<std::pair<std::string, std::string>> outputs;
    if (outputFile != "-")
      outputs.push_back({"-o", outputFile});
    if (!traceFile.empty())
      outputs.push_back({"--trace", traceFile});
    if (!svgFile.empty())
      outputs.push_back({"--svg", svgFile});
    auto same = [](llvm::StringRef a, llvm::StringRef b) {
      // A device (/dev/null) takes any number of outputs.
      llvm::sys::fs::file_status st;
      if (!llvm::sys::fs::status(a, st) &&
          st.type() == llvm::sys::fs::file_type::character_file)
        return false;
      llvm::SmallString<256> x(a), y(b);
      llvm::sys::path::remove_dots(x, /*remove_dot_dot=*/true);
      llvm::sys::path::remove_dots(y, /*remove_dot_dot=*/true);
      return x == y || llvm::sys::fs::equivalent(a, b);
    };
    for (size_t i = 0; i < outputs.size(); ++i)
      for (size_t j = i + 1; j < outputs.size(); ++j)
        if (same(outputs[i].second, outputs[j].second))
          return fail(1, outputs[i].first + " and " + outputs[j].first +
                             " both write '" + outputs[j].second +
                             "'; give each its own file");
  }
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
