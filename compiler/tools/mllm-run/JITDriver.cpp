//===- JITDriver.cpp - mllm-run's compiled step functions -----------------===//
#include "JITDriver.h"

#include "mllm/Dialect/MLLM/IR/Bounds.h"
#include "mllm/Sched/MemoryIR.h"
#include "mllm/Sched/Programs.h"
#include "mllm/Transforms/Sched/Passes.h"
#include "mllm/runtime/PlanMemory.h"
#include "mllm/runtime/exec/StepContext.h"
#include "mllm/runtime/jit/StepJIT.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace mlir;
using namespace mllm;
using namespace mllm::runtime;

namespace {

llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

/// The context's diagnostics while it lives, as "file:line:col: message"
/// lines, for an error message.
class CapturedDiagnostics {
public:
  explicit CapturedDiagnostics(MLIRContext &context)
      : handler(&context, [this](Diagnostic &d) {
          llvm::raw_string_ostream os(text);
          if (auto at = dyn_cast<FileLineColLoc>(d.getLocation()))
            os << at.getFilename().getValue() << ":" << at.getLine() << ":"
               << at.getColumn() << ": ";
          os << d << "\n";
          return success();
        }) {}
  std::string text;

private:
  ScopedDiagnosticHandler handler;
};

/// The step function of the runner's program, in the LLVM dialect: its
/// schedule rebuilt as sched IR, with the program's static memory plan.
llvm::Expected<OwningOpRef<ModuleOp>>
lowerProgram(MLIRContext &context, const exec::ProgramRunner &runner) {
  std::optional<sched::ScheduleKind> kind =
      sched::symbolizeScheduleKind(runner.scheduleKind());
  if (!kind)
    return fail("unknown schedule kind '" + runner.scheduleKind() + "'");
  OpBuilder builder(&context);
  context.getOrLoadDialect<LLVM::LLVMDialect>();
  CapturedDiagnostics diagnostics(context);
  Location loc = builder.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  builder.setInsertionPointToEnd(module->getBody());
  sched_ir::ScheduleOp op = sched_ir::buildSchedule(
      builder, loc, runner.graph(), runner.programs(), *kind);
  int64_t program = runner.programIndex();
  auto programs =
      llvm::to_vector(op.getBody().front().getOps<sched_ir::ProgramOp>());
  programs[program]->setAttr(
      sched_ir::kMemoryAttrName,
      sched_ir::toMemoryAttr(&context, runner.memoryPlan()));

  PassManager pm(&context);
  sched_ir::SchedToLLVMOptions options;
  options.program = program;
  options.memoryPlan = false;
  sched_ir::populateSchedToLLVMPipeline(pm, options);
  if (failed(pm.run(*module)))
    return fail("lowering the step function of program " +
                llvm::Twine(program) + " failed: " + diagnostics.text);
  return std::move(module);
}

class JITDriver : public exec::StepDriver {
public:
  explicit JITDriver(std::unique_ptr<jit::StepJIT> jit) : jit(std::move(jit)) {}
  llvm::Error runActions(exec::ProgramRunner &runner) override {
    exec::StepContext context(runner);
    return context.run(jit->function());
  }

private:
  std::unique_ptr<jit::StepJIT> jit;
};

/// The step functions of `path` (LLVM dialect, as mllmc --emit=llvm writes
/// them).
llvm::Expected<OwningOpRef<ModuleOp>> readStepFunctions(MLIRContext &context,
                                                        llvm::StringRef path) {
  context.getOrLoadDialect<LLVM::LLVMDialect>();
  CapturedDiagnostics diagnostics(context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(path, &context);
  if (!module)
    return fail("cannot read the step functions of '" + path +
                "': " + diagnostics.text);
  for (Operation &op : *module->getBody())
    if (!isa<LLVM::LLVMDialect>(op.getDialect()))
      return fail("'" + path + "' holds '" + op.getName().getStringRef() +
                  "'; step functions are LLVM dialect only (mllmc "
                  "--emit=llvm)");
  return std::move(module);
}

} // namespace

void mllm::useCompiledSteps(MLIRContext &context, bool json,
                            llvm::StringRef stepFile) {
  std::string file = stepFile.str();
  exec::setStepDriverFactory(
      [&context, json, file](const exec::ProgramRunner &runner)
          -> llvm::Expected<std::unique_ptr<exec::StepDriver>> {
        auto error = [&](llvm::Error e) {
          return runner.makeError("compiling the step function: " +
                                  llvm::toString(std::move(e)));
        };
        // A step function is lowered from the schedule as sched IR, which
        // holds at most bounds::kMaxScheduleSteps stage x microbatch steps;
        // a larger plan (or one-process run) is interpreted.
        if (file.empty() && !bounds::scheduleSteps(
                                static_cast<int64_t>(runner.programs().size()),
                                runner.graph().microbatches)) {
          if (runner.rank() == 0)
            llvm::errs() << llvm::formatv(
                "mllm-run: note: {0} is interpreted: its schedule of {1} "
                "program{2} x {3} microbatches exceeds the {4} steps a "
                "schedule in IR holds, from which step functions are "
                "compiled\n",
                runner.describe(), runner.programs().size(),
                runner.programs().size() == 1 ? "" : "s",
                runner.graph().microbatches, bounds::kMaxScheduleSteps);
          return std::unique_ptr<exec::StepDriver>();
        }
        auto start = std::chrono::steady_clock::now();
        int64_t program = runner.programIndex();
        auto module = file.empty() ? lowerProgram(context, runner)
                                   : readStepFunctions(context, file);
        if (!module)
          return error(module.takeError());
        std::string entry = "mllm_step_" + std::to_string(program);
        if (!file.empty() && !(*module)->lookupSymbol(entry)) {
          // Code of a plan with fewer programs: say so, not the JIT's
          // "Symbols not found".
          int64_t steps = 0;
          for (auto f : (*module)->getOps<LLVM::LLVMFuncOp>())
            steps += f.getName().starts_with("mllm_step_") && !f.isExternal();
          return runner.makeError(llvm::formatv(
              "'{0}' does not match the plan: it has step functions for {1} "
              "program{2}, the plan {3}, and none for {4}; write it from "
              "this plan's spec (mllmc SPEC --emit=llvm)",
              file, steps, steps == 1 ? "" : "s", runner.programs().size(),
              runner.describe()));
        }
        double lowered = std::chrono::duration<double>(
                             std::chrono::steady_clock::now() - start)
                             .count();
        auto jit = jit::StepJIT::compile(**module, entry,
                                         exec::StepContext::symbols());
        if (!jit)
          return error(jit.takeError());
        const sched::Program &p = runner.program();
        std::string line = llvm::formatv(
            "{0}step function of {1} ({2} actions) lowered in {3:f1} ms, "
            "JIT-compiled in {4:f1} ms",
            runner.parallel() ? "rank " + std::to_string(runner.rank()) + ": "
                              : "",
            runner.describe(), p.actions.size(), lowered * 1e3,
            (*jit)->seconds() * 1e3);
        // One write per line: every rank writes to the launcher's pipe at
        // once, and a line in pieces interleaves with the others' (seen in
        // CI); a write of under PIPE_BUF bytes stays whole.
        std::string text =
            json
                ? llvm::formatv("{{\"jit\": {{\"rank\": {0}, \"actions\": {1}, "
                                "\"lower_ms\": {2:f3}, \"jit_ms\": {3:f3}}}\n",
                                runner.rank(), p.actions.size(), lowered * 1e3,
                                (*jit)->seconds() * 1e3)
                      .str()
                : "mllm-run: " + line + "\n";
        // A thousand ranks' lines would bury the rest: rank 0 speaks for
        // them, every rank with --json (for tools that collect them).
        if (json || runner.rank() == 0)
          llvm::errs() << text;
        return std::make_unique<JITDriver>(std::move(*jit));
      });
}
