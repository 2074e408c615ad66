//===- Driver.cpp - what mllmc, mllm-sim and mllm-run share ---------------===//
#include "mllm/Driver/Driver.h"

#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Driver/PlanBuilder.h"
#include "mllm/Frontend/Parse.h"
#include "mllm/MLIRGen/MLIRGen.h"
#include "mllm/Plan/Partition.h"
#include "mllm/Plan/Profile.h"
#include "mllm/Transforms/MLLM/Passes.h"
#include "mllm/Transforms/Sched/Passes.h"
#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/PlanMemory.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/WithColor.h"

#include <algorithm>
#include <limits>

using namespace mllm;
namespace cl = llvm::cl;

// The plan reader (runtime/, below the dialects) bounds a job as the spec
// does: one table, checked here where both are visible.
static_assert(runtime::PlanReadLimits().maxLayers == bounds::kMaxLayers);
static_assert(runtime::PlanReadLimits().maxConfigInt == bounds::kMaxInt);
static_assert(runtime::PlanReadLimits().maxMicrobatchSize ==
              bounds::kMaxMicrobatchSize);
static_assert(runtime::PlanReadLimits().maxMicrobatches ==
              bounds::kMaxMicrobatches);
static_assert(runtime::PlanReadLimits().maxTokensPerMicrobatch ==
              bounds::kMaxTokensPerMicrobatch);

DriverOptions::DriverOptions(cl::OptionCategory &category)
    : includeDirs("I", cl::desc("Add DIR to the import path"),
                  cl::value_desc("dir"), cl::Prefix, cl::cat(category)),
      stdlibDir("stdlib",
                cl::desc("Standard library directory (default: $MLLM_STDLIB "
                         "or the build's stdlib/)"),
                cl::value_desc("dir"), cl::init(""), cl::cat(category)),
      profile("profile",
              cl::desc("Measured per-layer times (YAML, docs/cost-model.md) "
                       "that override the analytic cost model"),
              cl::value_desc("file"), cl::init(""), cl::cat(category)),
      schedule("schedule", cl::desc("The pipeline schedule"),
               cl::init(sched::ScheduleKind::MultimodalOneFOneB),
               cl::cat(category)),
      searchBudget(
          "search-budget",
          cl::desc("Plans the planner's search over every cut may price "
                   "(default 10000; docs/plan-format.md, \"Every cut\"); "
                   "--explain says where it stopped"),
          cl::value_desc("plans"), cl::init(plan::kDefaultSearchBudget),
          cl::cat(category)) {
  // The values are the sched dialect's spellings, one per enum case.
  static const char *const help[] = {
      "multimodal 1F1B: encoder pipelines in parallel, frozen- and "
      "memory-aware (default)",
      "Megatron-like: a linear pipeline, plain 1F1B, a fused backward (input "
      "and weight gradients together; frozen layers still compute none)",
      "all forwards, then all backwards"};
  for (uint32_t i = 0; i <= sched_ir::getMaxEnumValForScheduleKind(); ++i) {
    sched::ScheduleKind kind = *sched_ir::symbolizeScheduleKind(i);
    schedule.getParser().addLiteralOption(sched::stringifyScheduleKind(kind),
                                          kind, i < 3 ? help[i] : "");
  }
}

void mllm::hideUnrelatedOptions(cl::OptionCategory &category,
                                llvm::ArrayRef<const char *> args) {
  cl::HideUnrelatedOptions({&category, &cl::getGeneralCategory()});
  // LLVM suggests the nearest option that is not ReallyHidden: the
  // backends' options are ReallyHidden unless they are to be listed.
  bool listHidden = llvm::any_of(args, [](const char *arg) {
    llvm::StringRef name = llvm::StringRef(arg).ltrim('-');
    return name == "help-hidden" || name == "help-list-hidden";
  });
  // Options declared without a category land in the general one: MLIR's,
  // and every LLVM pass's and target's in the shared libLLVM.
  for (auto &entry : cl::getRegisteredOptions()) {
    cl::Option &option = *entry.second;
    if (option.getOptionHiddenFlag() != cl::ReallyHidden &&
        llvm::is_contained(option.Categories, &cl::getGeneralCategory()) &&
        !llvm::is_contained(option.Categories, &category) &&
        !entry.first.starts_with("mlir-"))
      option.setHiddenFlag(listHidden ? cl::Hidden : cl::ReallyHidden);
  }
}

bool mllm::parseCommandLine(int argc, const char *const *argv,
                            llvm::StringRef overview) {
  std::string errors;
  llvm::raw_string_ostream os(errors);
  if (cl::ParseCommandLineOptions(argc, argv, overview, &os))
    return true;
  llvm::SmallVector<llvm::StringRef> lines;
  llvm::StringRef(errors).split(lines, '\n', -1, /*KeepEmpty=*/false);
  // An unknown option written without '=' ('--stpes 3') left its value as
  // a positional argument; one with '=' took it along.
  bool unknown = llvm::any_of(lines, [](llvm::StringRef line) {
    llvm::StringRef option =
        line.split("Unknown command line argument '").second.split('\'').first;
    return !option.empty() && !option.contains('=');
  });
  for (size_t i = 0; i < lines.size(); ++i) {
    if (unknown && lines[i].contains("Too many positional arguments")) {
      // And its "Can specify at most N positional arguments" line.
      if (i + 1 < lines.size() && lines[i + 1].starts_with("Can specify"))
        ++i;
      continue;
    }
    llvm::errs() << lines[i] << "\n";
  }
  return false;
}

bool mllm::checkRepeatedOptions(cl::OptionCategory &category,
                                llvm::StringRef tool) {
  bool ok = true;
  for (auto &entry : cl::getRegisteredOptions()) {
    cl::Option &option = *entry.second;
    if (!llvm::is_contained(option.Categories, &category) ||
        option.getNumOccurrencesFlag() != cl::Optional ||
        option.getNumOccurrences() < 2 || entry.first != option.ArgStr)
      continue;
    llvm::WithColor::error(llvm::errs(), tool)
        << "--" << option.ArgStr << " is given " << option.getNumOccurrences()
        << " times; it takes one value: give it once\n";
    ok = false;
  }
  return ok;
}

void mllm::setVersionPrinter(llvm::StringRef tool) {
  static std::string name;
  name = tool.str();
  cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    if (name != "mllmc")
      os << name << ", ";
    os << "mllmc " MLLM_VERSION ", plan format version "
       << runtime::kPlanVersion << ", built with LLVM/MLIR "
       << LLVM_VERSION_STRING << "\n";
  });
}

LoadOptions DriverOptions::loadOptions(llvm::StringRef mainFile) const {
  LoadOptions options;
  options.includeDirs.assign(includeDirs.begin(), includeDirs.end());
  options.stdlibDir =
      stdlibDir.empty() ? defaultStdlibDir() : stdlibDir.getValue();
  options.mainFile = mainFile.str();
  return options;
}

bool mllm::checkProfile(const DriverOptions &options, llvm::StringRef tool) {
  if (options.profile.empty())
    return true;
  auto profile = plan::Profile::load(options.profile);
  if (profile)
    return true;
  std::string message = llvm::toString(profile.takeError());
  // A syntax or schema error already reads "FILE:LINE:COL: error: ...".
  if (llvm::StringRef(message).contains(": error: "))
    llvm::errs() << message << "\n";
  else
    llvm::WithColor::error(llvm::errs(), tool) << message << "\n";
  return false;
}

static std::string hashSources(const Program &program,
                               const llvm::SourceMgr &srcMgr) {
  llvm::SHA256 sha;
  for (const auto &file : program.files) {
    llvm::StringRef text = srcMgr.getMemoryBuffer(file->bufferId)->getBuffer();
    sha.update(text);
    sha.update(llvm::StringRef("\0", 1));
  }
  return llvm::toHex(sha.final(), /*LowerCase=*/true);
}

mlir::LogicalResult mllm::runPipelines(
    mlir::ModuleOp module, const DriverOptions &options,
    std::optional<sched::ScheduleKind> schedule, mlir::TimingScope *timing,
    llvm::function_ref<mlir::LogicalResult(mlir::PassManager &)> configure) {
  mlir::PassManager pm(module->getContext());
  if (configure && failed(configure(pm)))
    return mlir::failure();
  if (timing)
    pm.enableTiming(*timing);
  PlanPipelineOptions plan;
  plan.profile = options.profile.getValue();
  plan.searchBudget = static_cast<int64_t>(std::min<uint64_t>(
      options.searchBudget, std::numeric_limits<int64_t>::max()));
  populatePlanPipeline(pm, plan);
  if (schedule) {
    sched_ir::SchedPipelineOptions scheduling;
    scheduling.kind = sched::stringifyScheduleKind(*schedule).str();
    sched_ir::populateSchedPipeline(pm, scheduling);
  }
  return pm.run(module);
}

int mllm::compileSpec(
    mlir::MLIRContext &context, llvm::SourceMgr &srcMgr, unsigned bufferId,
    llvm::StringRef mainFile, const DriverOptions &options, CompileStage stage,
    Compiled &out, mlir::TimingScope *timing,
    llvm::function_ref<mlir::LogicalResult(mlir::PassManager &)> configure) {
  Diagnostics diags(srcMgr, context);
  std::optional<mlir::TimingScope> t;
  auto phase = [&](llvm::StringRef name) {
    t.reset();
    if (timing)
      t.emplace(timing->nest(name));
  };
  phase("parse");
  std::unique_ptr<Program> program =
      loadProgram(bufferId, options.loadOptions(mainFile), diags);
  if (program)
    for (const auto &file : program->files)
      out.sources.push_back(file->path);
  if (!program || diags.numErrors())
    return 1;
  out.specHash = hashSources(*program, srcMgr);
  phase("sema");
  out.job = analyze(*program, diags, /*requireJob=*/true, /*library=*/nullptr,
                    options.trainSteps);
  if (!out.job)
    return 1;
  if (stage == CompileStage::Sema)
    return 0;
  phase("mlirgen");
  out.module = mlirGen(*out.job, diags);
  t.reset();
  if (!out.module)
    return 2;
  if (stage == CompileStage::IR)
    return 0;
  std::optional<sched::ScheduleKind> schedule;
  if (stage == CompileStage::Schedule)
    schedule = options.schedule.getValue();
  if (failed(runPipelines(*out.module, options, schedule, timing, configure)))
    return 1;
  return 0;
}

InputKind mllm::classifyInput(llvm::StringRef path, llvm::StringRef text,
                              std::string *why) {
  llvm::StringRef ext = llvm::sys::path::extension(path);
  if (ext == ".mllm")
    return InputKind::Spec;
  if (ext == ".mlir")
    return InputKind::IR;
  if (ext == ".yaml" || ext == ".yml")
    return InputKind::Plan;
  auto said = [&](const char *what) {
    if (why)
      *why = what;
  };
  if (runtime::looksLikePlan(text)) {
    said("it looks like a plan file (it starts with 'version:')");
    return InputKind::Plan;
  }
  // IR starts with a module, an op of our dialects or an attribute alias.
  llvm::StringRef rest = text;
  while (!rest.empty()) {
    auto [line, next] = rest.split('\n');
    rest = next;
    llvm::StringRef l = line.trim();
    if (l.empty() || l.starts_with("//"))
      continue;
    if (l.starts_with("module") || l.starts_with("mllm.") ||
        l.starts_with("sched.") || l.starts_with("#") ||
        l.starts_with("\"builtin.module\"")) {
      said("it looks like MLIR (it starts with an op, not a declaration)");
      return InputKind::IR;
    }
    break;
  }
  return InputKind::Spec;
}

llvm::Error mllm::reschedule(runtime::Plan &plan, sched::ScheduleKind kind) {
  if (!plan.schedule)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the plan has no schedule");
  runtime::PlanSchedule &s = *plan.schedule;
  llvm::Expected<std::vector<sched::Program>> programs =
      sched::generateVerifiedSchedule(s.graph, kind);
  if (!programs)
    return programs.takeError();
  s.programs = std::move(*programs);
  s.kind = stringifyScheduleKind(kind).str();
  if (!s.arenaBytes.empty())
    runtime::recordArenas(plan);
  return llvm::Error::success();
}

int mllm::loadPlan(mlir::MLIRContext &context, llvm::SourceMgr &srcMgr,
                   llvm::StringRef path, const DriverOptions &options,
                   runtime::Plan &plan, std::string &error,
                   mlir::OwningOpRef<mlir::ModuleOp> *moduleOut) {
  const llvm::MemoryBuffer *buffer =
      srcMgr.getMemoryBuffer(srcMgr.getMainFileID());
  InputKind kind = classifyInput(path, buffer->getBuffer());
  sched::ScheduleKind schedule = options.schedule;
  // A plan (or IR) keeps the schedule it holds unless --schedule asks for
  // another; the option's default is for what has none yet.
  bool scheduleGiven = options.schedule.getNumOccurrences() > 0;
  // A plan's times are fixed when it is made: a profile given with one
  // would be ignored without a word.
  if (kind == InputKind::Plan && !options.profile.empty()) {
    error = path.str() +
            ": error: --profile times the layers when a spec is compiled, "
            "and this is a plan whose times are already fixed; pass the "
            "spec instead, or make the plan with `mllmc SPEC --profile " +
            options.profile.getValue() + " --emit=plan`";
    return 1;
  }
  if (kind == InputKind::Plan) {
    auto read = runtime::readPlan(buffer->getBuffer(), path);
    if (!read) {
      error = llvm::toString(read.takeError());
      return 1;
    }
    plan = std::move(*read);
    if (!plan.schedule) {
      error = path.str() + ": error: the plan has no schedule";
      return 1;
    }
    if (scheduleGiven && plan.schedule->kind != stringifyScheduleKind(schedule))
      if (llvm::Error e = reschedule(plan, schedule)) {
        error = llvm::toString(std::move(e));
        return 2;
      }
    return 0;
  }
  // The schedule is generated and verified in memory (buildPlan), not as
  // `sched` IR, unless the module holds one of the kind asked for.
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::string specHash;
  if (kind == InputKind::Spec) {
    Compiled compiled;
    if (int rc = compileSpec(context, srcMgr, srcMgr.getMainFileID(), path,
                             options, CompileStage::Plan, compiled))
      return rc;
    module = std::move(compiled.module);
    specHash = compiled.specHash;
  } else {
    mlir::ParserConfig config(&context);
    module = mlir::parseSourceFile<mlir::ModuleOp>(srcMgr, config);
    if (!module)
      return 1;
    // Name what is missing first: without a model there is nothing to plan.
    if (!getFirst<ModelOp>(*module)) {
      mlir::emitError(module->getLoc())
          << "the module has no 'mllm.model'; expected the IR of a job "
             "('mllmc --emit=mllm' or '--emit=sched')";
      return 1;
    }
    // Plan what has not been yet; a schedule of another kind is replaced.
    // A planned module is planned again with a --profile: its times are the
    // cost model's or another profile's, and its schedule goes with them.
    bool planned = !module->getOps<PipelineOp>().empty();
    bool replan = planned && !options.profile.empty();
    if (!scheduleGiven)
      for (sched_ir::ScheduleOp op : module->getOps<sched_ir::ScheduleOp>())
        schedule = op.getKind();
    for (sched_ir::ScheduleOp op :
         llvm::make_early_inc_range(module->getOps<sched_ir::ScheduleOp>()))
      if (replan || op.getKind() != schedule)
        op.erase();
    if ((!planned || replan) &&
        failed(runPipelines(*module, options, std::nullopt)))
      return 1;
  }
  auto built = buildPlan(*module, path, specHash, schedule);
  if (!built) {
    error = llvm::toString(built.takeError());
    return kind == InputKind::IR ? 1 : 2;
  }
  if (failed(checkPlanMemory(*module, *built)))
    return 1;
  plan = std::move(*built);
  if (moduleOut)
    *moduleOut = std::move(module);
  return 0;
}
