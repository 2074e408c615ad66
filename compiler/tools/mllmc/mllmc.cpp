//===- mllmc.cpp - the mllm compiler driver -------------------------------===//
//
// Compiles a .mllm spec. Exit codes: 0 success, 1 user error (diagnostics
// printed), 2 internal error. The output appears only when the run succeeds
// (OutputFile), and never replaces the spec, an import or the profile.
//
//===----------------------------------------------------------------------===//
#include "Arena.h"
#include "Explain.h"
#include "Summary.h"

#include "mllm/Driver/Driver.h"
#include "mllm/Driver/PlanBuilder.h"
#include "mllm/Plan/Profile.h"
#include "mllm/Support/SourceLineHandler.h"
#include "mllm/Tools/RegisterMllm.h"
#include "mllm/Transforms/Sched/Passes.h"
#include "mllm/runtime/PlanIO.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"

using namespace mllm;
namespace cl = llvm::cl;

namespace {
enum class Emit { Summary, AST, MLLM, Sched, LLVM, Plan };

/// A time of the plan (milliseconds, rounded to the microsecond in the IR)
/// in the unit that shows it: seconds from one up, microseconds below one
/// millisecond, so that a laptop-sized job does not read "0.0 ms".
std::string duration(double ms) {
  // Each bound is where the smaller unit's rounding reaches 1000.
  if (ms >= 999.95)
    return llvm::formatv("{0:F2} s", ms / 1000).str();
  if (ms >= 0.9995)
    return llvm::formatv("{0:F1} ms", ms).str();
  if (ms >= 0.0005)
    return llvm::formatv("{0:F0} us", ms * 1000).str();
  return "under 1 us";
}

cl::OptionCategory category("mllmc options");
cl::opt<std::string> inputFile(cl::Positional, cl::desc("<spec.mllm>"),
                               cl::Required, cl::cat(category));
cl::opt<Emit, false, ChoiceParser<Emit>> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::Summary),
    cl::values(clEnumValN(Emit::Summary, "summary",
                          "a readable summary of the job (default)"),
               clEnumValN(Emit::AST, "ast", "the syntax tree of the spec"),
               clEnumValN(Emit::MLLM, "mllm",
                          "the mllm dialect IR after the compile pipeline"),
               clEnumValN(Emit::Sched, "sched",
                          "the IR with the verified schedule (sched dialect)"),
               clEnumValN(Emit::LLVM, "llvm",
                          "every stage's step function in the LLVM dialect "
                          "(docs/runtime.md, compiled step functions)"),
               clEnumValN(Emit::Plan, "plan",
                          "the training plan as YAML (docs/plan-format.md)")),
    cl::cat(category));
cl::opt<std::string> outputFile("o", cl::desc("Output file (default stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));
cl::opt<bool> explain(
    "explain",
    cl::desc("Print why each partitioning decision was made: the frozen "
             "analysis and a table of the pipeline stages (after the "
             "summary; beside IR or a plan, on stdout when -o names a file, "
             "else on stderr)"),
    cl::init(false), cl::cat(category));
cl::opt<bool> planFromIR(
    "plan-from-ir",
    cl::desc("With --emit=plan: build the plan from the schedule "
             "materialised as sched IR (sched-generate, sched-verify) instead "
             "of the programs generated and verified in memory; the plans are "
             "the same (a check of the two paths)"),
    cl::init(false), cl::Hidden, cl::cat(category));
cl::opt<bool> splitInputFile(
    "split-input-file",
    cl::desc("Compile each '// -----' separated chunk of the input on its own"),
    cl::init(false), cl::cat(category));
cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check diagnostics against expected-* annotations in the input"),
    cl::init(false), cl::cat(category));

/// The shared front-end options (-I, --stdlib, --profile, --schedule).
DriverOptions *driverOptions = nullptr;

/// Every source file the chunks loaded: the output must not replace one.
std::vector<std::string> loadedSources;

/// Compiles one spec (or chunk) and writes what --emit asks for; returns
/// the exit code.
int compile(mlir::MLIRContext &context, llvm::SourceMgr &srcMgr,
            unsigned bufferId, llvm::raw_ostream &os,
            mlir::TimingScope &timing) {
  const DriverOptions &options = *driverOptions;
  if (emit == Emit::AST) {
    Diagnostics diags(srcMgr, context);
    std::unique_ptr<Program> program =
        loadProgram(bufferId, options.loadOptions(inputFile), diags);
    if (program)
      for (const auto &file : program->files)
        loadedSources.push_back(file->path);
    if (!program || diags.numErrors())
      return 1;
    for (const auto &file : program->files)
      ast::dump(*file, os);
    // The AST of a library is useful on its own; still check its
    // declarations so that `--emit=ast` validates stdlib files.
    return analyze(*program, diags, /*requireJob=*/false) ? 0 : 1;
  }
  // The schedule is materialised as sched IR only where the IR is the
  // output; the plan's is generated and verified in memory (buildPlan),
  // which holds more steps (Bounds.h).
  CompileStage stage = emit == Emit::Sched || emit == Emit::LLVM ||
                               (emit == Emit::Plan && planFromIR)
                           ? CompileStage::Schedule
                           : CompileStage::Plan;
  Compiled compiled;
  // MLIR's --mlir-print-ir-* and timing flags apply to the pipelines as in
  // mllm-opt.
  int rc = compileSpec(context, srcMgr, bufferId, inputFile, options, stage,
                       compiled, &timing, [](mlir::PassManager &pm) {
                         return mlir::applyPassManagerCLOptions(pm);
                       });
  llvm::append_range(loadedSources, compiled.sources);
  // The summary of a checked job is printed even when planning fails (a
  // stage that does not fit), above the planner's error.
  if (emit == Emit::Summary && compiled.job)
    printSummary(*compiled.job, os);
  if (rc)
    return rc;
  mlir::ModuleOp module = *compiled.module;
  // The summary's "plan:" line promises what --emit=plan and mllm-run
  // accept: the schedule asked for, generated and verified, and each
  // stage's static memory plan within its GPU (GPipe holds every
  // microbatch, which the estimate's 1F1B in-flight cap does not).
  std::optional<runtime::Plan> plan;
  if (emit == Emit::Plan || emit == Emit::Summary) {
    auto built = buildPlan(module, inputFile, compiled.specHash,
                           options.schedule.getValue());
    if (!built) {
      llvm::WithColor::error(llvm::errs(), "mllmc")
          << "internal error: " << llvm::toString(built.takeError()) << "\n";
      return 2;
    }
    plan = std::move(*built);
    if (failed(checkPlanMemory(module, *plan)))
      return 1;
  }
  // The capped stages' counts are read from its programs where it exists.
  const runtime::PlanSchedule *planSchedule =
      plan && plan->schedule ? &*plan->schedule : nullptr;
  if (emit == Emit::Summary) {
    for (auto pipeline : module.getOps<PipelineOp>()) {
      llvm::MapVector<llvm::StringRef, int64_t> stages;
      for (auto stage : pipeline.getBody().front().getOps<StageOp>())
        ++stages[stage.getPart()];
      os << "plan: ";
      llvm::ListSeparator sep(" + ");
      for (auto [part, count] : stages)
        os << sep << part << " " << count << " stage" << (count > 1 ? "s" : "");
      os << ", bottleneck "
         << duration(pipeline.getBottleneck().convertToDouble())
         << " per microbatch, estimated iteration "
         << duration(pipeline.getIteration().convertToDouble());
      // Caps can cost more than the bottleneck says: the line says so.
      size_t capped = cappedStages(pipeline, planSchedule).size();
      if (capped)
        os << "; memory caps the microbatches in flight of " << capped
           << (capped == 1 ? " stage" : " stages");
      // Not proven the best the cost model knows of: the line says so.
      if (pipeline.getSearch() == SearchCoverage::Budget)
        os << "; the cut search stopped at its budget";
      os << " (--explain shows why)\n";
    }
  } else if (emit == Emit::MLLM || emit == Emit::Sched) {
    module->print(os);
    os << "\n";
  } else if (emit == Emit::LLVM) {
    // On a copy: the lowering replaces the module's contents, --explain
    // reads the plan.
    mlir::OwningOpRef<mlir::ModuleOp> lowered = module.clone();
    mlir::PassManager pm(&context);
    if (failed(mlir::applyPassManagerCLOptions(pm)))
      return 1;
    sched_ir::populateSchedToLLVMPipeline(pm, sched_ir::SchedToLLVMOptions());
    if (failed(pm.run(*lowered)))
      return 2;
    lowered->print(os);
    os << "\n";
  }
  if (emit == Emit::Plan)
    os << runtime::writePlan(*plan);
  if (explain) {
    // Beside IR or a plan, which tools read, the text goes where it cannot
    // break them: to the standard output when they go to a file, else
    // after them on the standard error.
    llvm::raw_ostream *xs = &os;
    if (emit != Emit::Summary && outputFile == "-") {
      os.flush();
      xs = &llvm::errs();
    } else if (emit != Emit::Summary) {
      xs = &llvm::outs();
    }
    *xs << "\n";
    if (failed(printExplain(module, *xs, planSchedule)))
      return 2;
    // The schedule is in the module (--emit=sched, --plan-from-ir) or in
    // the plan.
    if (plan && module.getOps<sched_ir::ScheduleOp>().empty())
      printArenaTable(*plan, *xs);
    else
      printArenaTable(module, *xs);
  }
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // Pass names first: the pass-manager options read them when created, so
  // --mlir-print-ir-after=mllm-partition works here as in mllm-opt.
  registerAllMllmPasses();
  registerAllSchedPasses();
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerPassManagerCLOptions();
  mlir::registerDefaultTimingManagerCLOptions();
  DriverOptions options(category);
  driverOptions = &options;
  hideUnrelatedOptions(category, llvm::ArrayRef<const char *>(argv, argc));
  setVersionPrinter("mllmc");
  if (!parseCommandLine(
          argc, argv,
          "mllmc - compile a multimodal-LLM training spec (.mllm)\n\n"
          "  mllmc spec.mllm               summary of the checked job\n"
          "  mllmc spec.mllm --emit=mllm   the mllm dialect IR after the "
          "passes\n"
          "  mllmc spec.mllm --emit=sched  the IR with the verified schedule\n"
          "  mllmc spec.mllm --emit=llvm   the step functions (LLVM dialect)\n"
          "  mllmc spec.mllm --emit=plan   the training plan (YAML)\n"
          "  mllmc spec.mllm --explain     why the stages are where they are\n"
          "  mllmc spec.mllm --emit=ast    the syntax tree\n\n"
          "Exit status: 0 ok, 1 error in the spec, 2 internal error.\n"))
    return 1;
  if (!checkRepeatedOptions(category, "mllmc"))
    return 1;

  // Before anything is read: an output that names an input would destroy
  // it (imports are checked once they are known, before the output is
  // put in place).
  if (llvm::Error error =
          checkOutputNotInput(outputFile, {inputFile, options.profile})) {
    llvm::WithColor::error(llvm::errs(), "mllmc")
        << llvm::toString(std::move(error)) << "\n";
    return 1;
  }

  // A bad profile is the user's error, reported once and up front.
  if (!checkProfile(options, "mllmc"))
    return 1;

  mlir::DialectRegistry registry;
  registerAllMllmDialects(registry);
  registerSchedDialect(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  context.printOpOnDiagnostic(false);

  std::string error;
  auto input = mllm::openInputFile(inputFile, error);
  if (!input) {
    llvm::WithColor::error(llvm::errs(), "mllmc") << error << "\n";
    return 1;
  }
  auto output = OutputFile::open(outputFile);
  if (!output) {
    llvm::WithColor::error(llvm::errs(), "mllmc")
        << llvm::toString(output.takeError()) << "\n";
    return 1;
  }
  mlir::DefaultTimingManager tm;
  mlir::applyDefaultTimingManagerCLOptions(tm);
  mlir::TimingScope timing = tm.getRootScope();

  // Worst exit code over all chunks.
  int rc = 0;
  auto process = [&](std::unique_ptr<llvm::MemoryBuffer> buffer,
                     llvm::raw_ostream &os) -> mlir::LogicalResult {
    llvm::SourceMgr srcMgr;
    unsigned bufferId =
        srcMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
    int chunkRc;
    if (verifyDiagnostics) {
      mlir::SourceMgrDiagnosticVerifierHandler handler(srcMgr, &context);
      (void)compile(context, srcMgr, bufferId, os, timing);
      chunkRc = failed(handler.verify()) ? 1 : 0;
    } else {
      SourceLineHandler handler(srcMgr, &context);
      chunkRc = compile(context, srcMgr, bufferId, os, timing);
    }
    rc = std::max(rc, chunkRc);
    return mlir::success(chunkRc == 0);
  };
  llvm::raw_ostream &os = (*output)->os();
  // Plans of several chunks are YAML documents of one stream, which the
  // plan reader refuses as one plan (it says so) instead of misreading.
  if (splitInputFile)
    (void)mlir::splitAndProcessBuffer(std::move(input), process, os,
                                      mlir::kDefaultSplitMarker,
                                      emit == Emit::Plan ? "---" : "");
  else
    (void)process(std::move(input), os);
  if (rc != 0)
    return rc; // The output is discarded; an existing file stays as it was.
  llvm::Error written = checkOutputNotInput(outputFile, loadedSources);
  if (!written)
    written = (*output)->commit();
  if (written) {
    llvm::WithColor::error(llvm::errs(), "mllmc")
        << llvm::toString(std::move(written)) << "\n";
    return 1;
  }
  return 0;
}
