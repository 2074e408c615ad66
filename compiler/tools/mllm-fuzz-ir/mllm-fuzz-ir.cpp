//===- mllm-fuzz-ir.cpp - libFuzzer target for IR, verifiers and planning -===//
//
// Feeds arbitrary bytes to what `mllm-opt --mllm-plan-pipeline
// --sched-pipeline` and `mllm-sim job.mlir` do with a file: parse as MLIR
// with the mllm and sched dialects (verifying every op), print, run the plan
// and schedule pipelines with the verifier after each pass, and build and
// write the plan. Any crash, sanitizer report, hang or runaway allocation
// is a bug: IR written by hand must only ever produce diagnostics.
//
//===----------------------------------------------------------------------===//
#include "mllm/Driver/PlanBuilder.h"
#include "mllm/Tools/RegisterMllm.h"
#include "mllm/Transforms/MLLM/Passes.h"
#include "mllm/Transforms/Sched/Passes.h"
#include "mllm/runtime/PlanIO.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    mllm::registerAllMllmDialects(registry);
    mllm::registerSchedDialect(registry);
    auto *ctx = new mlir::MLIRContext(registry);
    ctx->loadAllAvailableDialects();
    // One input at a time; threads would only blur the coverage signal.
    ctx->disableMultithreading();
    // Diagnostics are expected; printing them would only slow fuzzing down.
    ctx->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
    return ctx;
  }();

  // A NUL-terminated copy, as the tools' files are: MLIR's lexer relies on
  // the terminator.
  llvm::SourceMgr srcMgr;
  srcMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(
          llvm::StringRef(reinterpret_cast<const char *>(data), size),
          "fuzz.mlir"),
      llvm::SMLoc());
  mlir::ParserConfig config(context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(srcMgr, config);
  if (!module)
    return 0;
  // The custom printers see only verified IR here; diagnostics print the
  // generic form.
  module->print(llvm::nulls());
  module->print(llvm::nulls(), mlir::OpPrintingFlags().printGenericOpForm());

  mlir::PassManager pm(context);
  pm.enableVerifier(true);
  mllm::populatePlanPipeline(pm, {});
  mllm::sched_ir::populateSchedPipeline(pm, {});
  if (failed(pm.run(*module)))
    return 0;
  module->print(llvm::nulls());
  // mllm-sim and `mllmc --emit=plan`: the plan model built from the IR.
  auto plan = mllm::buildPlan(*module, "fuzz.mlir", "");
  if (!plan) {
    llvm::consumeError(plan.takeError());
    return 0;
  }
  (void)mllm::runtime::writePlan(*plan);
  return 0;
}
