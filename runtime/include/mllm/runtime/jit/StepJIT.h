//===- StepJIT.h - compile step functions with ORC --------------*- C++ -*-===//
//
// The runtime's one use of MLIR: a module of step functions in the LLVM
// dialect (sched-to-llvm) is compiled to native code through MLIR's
// ExecutionEngine (ORC LLJIT), with the C ABI bound explicitly by name
// (no -rdynamic, no process-symbol lookup). docs/runtime.md, "Compiled
// step functions".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_JIT_STEPJIT_H
#define MLLM_RUNTIME_JIT_STEPJIT_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace llvm {
class Module;
} // namespace llvm
namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace mllm::runtime::jit {

class StepJIT {
public:
  /// Compiles `module` (LLVM dialect only) and looks up `function`, an
  /// `i32 (ptr)` function. `symbols` binds the external functions the
  /// module calls. `optLevel` is LLVM's (0-3).
  static llvm::Expected<std::unique_ptr<StepJIT>>
  compile(mlir::ModuleOp module, llvm::StringRef function,
          llvm::ArrayRef<std::pair<const char *, void *>> symbols,
          unsigned optLevel = 2);
  ~StepJIT();

  using Function = int32_t (*)(void *);
  Function function() const { return entry; }
  /// Seconds spent translating to LLVM IR and generating code.
  double seconds() const { return compileSeconds; }

private:
  StepJIT() = default;
  std::function<llvm::Error(llvm::Module *)> transformer;
  std::unique_ptr<mlir::ExecutionEngine> engine;
  Function entry = nullptr;
  double compileSeconds = 0;
};

} // namespace mllm::runtime::jit

#endif // MLLM_RUNTIME_JIT_STEPJIT_H
