//===- StepJIT.cpp - compile step functions with ORC ----------------------===//
#include "mllm/runtime/jit/StepJIT.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/TargetSelect.h"

#include <chrono>
#include <mutex>

using namespace mllm::runtime::jit;

StepJIT::~StepJIT() = default;

llvm::Expected<std::unique_ptr<StepJIT>>
StepJIT::compile(mlir::ModuleOp module, llvm::StringRef function,
                 llvm::ArrayRef<std::pair<const char *, void *>> symbols,
                 unsigned optLevel) {
  static std::once_flag targets;
  std::call_once(targets, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  auto start = std::chrono::steady_clock::now();
  mlir::MLIRContext *context = module.getContext();
  mlir::registerBuiltinDialectTranslation(*context);
  mlir::registerLLVMDialectTranslation(*context);

  std::unique_ptr<StepJIT> jit(new StepJIT());
  // Options hold a reference to the transformer: it lives with the engine.
  jit->transformer = mlir::makeOptimizingTransformer(optLevel, /*sizeLevel=*/0,
                                                     /*targetMachine=*/nullptr);
  mlir::ExecutionEngineOptions options;
  options.transformer = jit->transformer;
  auto engine = mlir::ExecutionEngine::create(module, options);
  if (!engine)
    return engine.takeError();
  std::vector<std::pair<std::string, void *>> bound;
  for (auto [name, address] : symbols)
    bound.emplace_back(name, address);
  (*engine)->registerSymbols([&](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap map;
    for (auto &[name, address] : bound)
      map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                             llvm::JITSymbolFlags::Exported};
    return map;
  });
  // Code generation happens here, at the first lookup.
  auto found = (*engine)->lookup(function);
  if (!found)
    return found.takeError();
  jit->engine = std::move(*engine);
  jit->entry = reinterpret_cast<Function>(*found);
  jit->compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return std::move(jit);
}
