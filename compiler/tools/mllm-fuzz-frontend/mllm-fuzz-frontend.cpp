//===- mllm-fuzz-frontend.cpp - libFuzzer target for the front end --------===//
//
// Feeds arbitrary bytes through parsing, import resolution (against the
// stdlib) and semantic analysis, and MLIRGen when the spec is valid. Any
// crash, sanitizer report or hang is a bug: user input must only ever
// produce diagnostics.
//
//===----------------------------------------------------------------------===//
#include "mllm/MLIRGen/MLIRGen.h"
#include "mllm/Sema/Sema.h"
#include "mllm/Tools/RegisterMllm.h"
#include "mllm/Transforms/MLLM/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    mllm::registerAllMllmDialects(registry);
    auto *ctx = new mlir::MLIRContext(registry);
    ctx->loadAllAvailableDialects();
    // Diagnostics are expected; printing them would only slow fuzzing down.
    ctx->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
    return ctx;
  }();

  llvm::SourceMgr srcMgr;
  unsigned id = srcMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(
          llvm::StringRef(reinterpret_cast<const char *>(data), size),
          "fuzz.mllm"),
      llvm::SMLoc());
  mllm::Diagnostics diags(srcMgr, *context);
  mllm::LoadOptions options;
  options.stdlibDir = MLLM_STDLIB_DIR;
  auto program = mllm::loadProgram(id, options, diags);
  if (!program)
    return 0;
  auto job = mllm::analyze(*program, diags);
  if (!job)
    return 0;
  // Valid specs go through the whole plan pipeline: its diagnostics (memory,
  // explicit partitions) are user-reachable too.
  auto module = mllm::mlirGen(*job, diags);
  if (!module)
    return 0;
  mlir::PassManager pm(context);
  pm.enableVerifier(true);
  mllm::populatePlanPipeline(pm, {});
  (void)pm.run(*module);
  return 0;
}
