//===- mllmc.cpp - the mllm compiler driver -------------------------------===//
//
// Compiles a .mllm spec. Exit codes: 0 success, 1 user error (diagnostics
// printed), 2 internal error.
//
//===----------------------------------------------------------------------===//
#include "Plan.h"
#include "Summary.h"

#include "mllm/Transforms/MLLM/Passes.h"
#include "mllm/Transforms/Sched/Passes.h"
#include "mllm/Frontend/Parse.h"
#include "mllm/MLIRGen/MLIRGen.h"
#include "mllm/Plan/CostModel.h"
#include "mllm/Sema/Sema.h"
#include "mllm/Tools/RegisterMllm.h"

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
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mllm;
namespace cl = llvm::cl;

namespace {
enum class Emit { Summary, AST, MLLM, Sched, Plan };
enum class Schedule { MultimodalOneFOneB, OneFOneB, GPipe };

cl::OptionCategory category("mllmc options");
cl::opt<std::string> inputFile(cl::Positional, cl::desc("<spec.mllm>"),
                               cl::Required, cl::cat(category));
cl::opt<Emit> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::Summary),
    cl::values(clEnumValN(Emit::Summary, "summary",
                          "a readable summary of the job (default)"),
               clEnumValN(Emit::AST, "ast", "the syntax tree of the spec"),
               clEnumValN(Emit::MLLM, "mllm",
                          "the mllm dialect IR after the compile pipeline"),
               clEnumValN(Emit::Sched, "sched",
                          "the IR with the verified schedule (sched dialect)"),
               clEnumValN(Emit::Plan, "plan",
                          "the training plan as YAML (docs/plan-format.md)")),
    cl::cat(category));
cl::opt<Schedule> schedule(
    "schedule",
    cl::desc("Pipeline schedule for --emit=sched|plan (docs/plan-format.md)"),
    cl::init(Schedule::MultimodalOneFOneB),
    cl::values(clEnumValN(Schedule::MultimodalOneFOneB, "multimodal-1f1b",
                          "multimodal 1F1B, frozen-aware (default)"),
               clEnumValN(Schedule::OneFOneB, "1f1b",
                          "Megatron-like 1F1B on a linear pipeline"),
               clEnumValN(Schedule::GPipe, "gpipe",
                          "all forwards, then all backwards")),
    cl::cat(category));
cl::opt<std::string> outputFile("o", cl::desc("Output file (default stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));
cl::list<std::string> includeDirs("I", cl::desc("Add DIR to the import path"),
                                  cl::value_desc("dir"), cl::Prefix,
                                  cl::cat(category));
cl::opt<std::string>
    stdlibDir("stdlib",
              cl::desc("Standard library directory (default: $MLLM_STDLIB "
                       "or the build's stdlib/)"),
              cl::value_desc("dir"), cl::init(""), cl::cat(category));
cl::opt<bool> explain(
    "explain",
    cl::desc("Print why each partitioning decision was made: the frozen "
             "analysis and a table of the pipeline stages (after the "
             "--emit output)"),
    cl::init(false), cl::cat(category));
cl::opt<std::string>
    profileFile("profile",
                cl::desc("Measured per-layer times (YAML, docs/cost-model.md) "
                         "that override the analytic cost model"),
                cl::value_desc("file"), cl::init(""), cl::cat(category));
cl::opt<bool> splitInputFile(
    "split-input-file",
    cl::desc("Compile each '// -----' separated chunk of the input on its own"),
    cl::init(false), cl::cat(category));
cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check diagnostics against expected-* annotations in the input"),
    cl::init(false), cl::cat(category));

/// Runs the front end; returns the exit code.
int compile(mlir::MLIRContext &context, llvm::SourceMgr &srcMgr,
            unsigned bufferId, llvm::raw_ostream &os,
            mlir::TimingScope &timing) {
  Diagnostics diags(srcMgr, context);
  LoadOptions options;
  options.includeDirs.assign(includeDirs.begin(), includeDirs.end());
  options.stdlibDir = stdlibDir.empty() ? defaultStdlibDir() : stdlibDir;
  options.mainFile = inputFile;

  std::unique_ptr<Program> program;
  {
    mlir::TimingScope t = timing.nest("parse");
    program = loadProgram(bufferId, options, diags);
  }
  if (!program || diags.numErrors())
    return 1;
  if (emit == Emit::AST) {
    for (const auto &file : program->files)
      ast::dump(*file, os);
    // The AST of a library is useful on its own; still check its
    // declarations so that `--emit=ast` validates stdlib files.
    return analyze(*program, diags, /*requireJob=*/false) ? 0 : 1;
  }
  std::optional<spec::Job> job;
  {
    mlir::TimingScope t = timing.nest("sema");
    job = analyze(*program, diags);
  }
  if (!job)
    return 1;
  if (emit == Emit::Summary)
    printSummary(*job, os);
  mlir::OwningOpRef<mlir::ModuleOp> module;
  {
    mlir::TimingScope t = timing.nest("mlirgen");
    module = mlirGen(*job, diags);
  }
  if (!module)
    return 2;
  // The compile pipeline. MLIR's --mlir-print-ir-* and timing flags apply
  // to it as in mllm-opt.
  mlir::PassManager pm(&context);
  if (failed(mlir::applyPassManagerCLOptions(pm)))
    return 1;
  pm.enableTiming(timing);
  PlanPipelineOptions pipeline;
  pipeline.profile = profileFile;
  populatePlanPipeline(pm, pipeline);
  // The schedule: generated from the plan and proven deadlock-free.
  if (emit == Emit::Sched || emit == Emit::Plan) {
    sched_ir::SchedPipelineOptions scheduling;
    switch (schedule) {
    case Schedule::MultimodalOneFOneB:
      scheduling.kind = "multimodal-1f1b";
      break;
    case Schedule::OneFOneB:
      scheduling.kind = "1f1b";
      break;
    case Schedule::GPipe:
      scheduling.kind = "gpipe";
      break;
    }
    sched_ir::populateSchedPipeline(pm, scheduling);
  }
  if (failed(pm.run(*module)))
    return 1;
  if (emit == Emit::Summary) {
    // The default run plans too, so that a spec that cannot run (a stage
    // that does not fit) fails here, not only with --emit=plan.
    for (auto pipeline : module->getOps<PipelineOp>()) {
      llvm::MapVector<llvm::StringRef, int64_t> stages;
      for (auto stage : pipeline.getBody().front().getOps<StageOp>())
        ++stages[stage.getPart()];
      os << "plan: ";
      llvm::ListSeparator sep(" + ");
      for (auto [part, count] : stages)
        os << sep << part << " " << count << " stage" << (count > 1 ? "s" : "");
      os << llvm::format(", bottleneck %.1f ms per microbatch, estimated "
                         "iteration %.2f s",
                         pipeline.getBottleneck().convertToDouble(),
                         pipeline.getIteration().convertToDouble() / 1000)
         << " (--explain shows why)\n";
    }
  } else if (emit == Emit::MLLM || emit == Emit::Sched) {
    module->print(os);
    os << "\n";
  } else if (emit == Emit::Plan) {
    if (failed(writePlan(*module, inputFile, os)))
      return 2;
  }
  if (explain) {
    os << "\n";
    if (failed(printExplain(*module, os)))
      return 2;
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
  cl::HideUnrelatedOptions({&category, &cl::getGeneralCategory()});
  cl::ParseCommandLineOptions(
      argc, argv,
      "mllmc - compile a multimodal-LLM training spec (.mllm)\n\n"
      "  mllmc spec.mllm               summary of the checked job\n"
      "  mllmc spec.mllm --emit=mllm   the mllm dialect IR after the passes\n"
      "  mllmc spec.mllm --emit=sched  the IR with the verified schedule\n"
      "  mllmc spec.mllm --emit=plan   the training plan (YAML)\n"
      "  mllmc spec.mllm --explain     why the stages are where they are\n"
      "  mllmc spec.mllm --emit=ast    the syntax tree\n\n"
      "Exit status: 0 ok, 1 error in the spec, 2 internal error.\n");

  // A bad profile is the user's error, reported once and up front.
  if (!profileFile.empty()) {
    auto profile = plan::Profile::load(profileFile);
    if (!profile) {
      llvm::WithColor::error(llvm::errs(), "mllmc")
          << llvm::toString(profile.takeError()) << "\n";
      return 1;
    }
  }

  mlir::DialectRegistry registry;
  registerAllMllmDialects(registry);
  registerSchedDialect(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  context.printOpOnDiagnostic(false);

  std::string error;
  auto input = mlir::openInputFile(inputFile, &error);
  if (!input) {
    llvm::WithColor::error(llvm::errs(), "mllmc") << error << "\n";
    return 1;
  }
  auto output = mlir::openOutputFile(outputFile, &error);
  if (!output) {
    llvm::WithColor::error(llvm::errs(), "mllmc") << error << "\n";
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
      mlir::SourceMgrDiagnosticHandler handler(srcMgr, &context);
      chunkRc = compile(context, srcMgr, bufferId, os, timing);
    }
    rc = std::max(rc, chunkRc);
    return mlir::success(chunkRc == 0);
  };
  if (splitInputFile)
    (void)mlir::splitAndProcessBuffer(std::move(input), process, output->os());
  else
    (void)process(std::move(input), output->os());
  if (rc == 0)
    output->keep();
  return rc;
}
