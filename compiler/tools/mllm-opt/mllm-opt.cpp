//===- mllm-opt.cpp - the mllm optimizer driver ---------------------------===//
//
// MlirOptMain with the mllm dialects and passes, for tests and debugging.
//
//===----------------------------------------------------------------------===//
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "mllm/Tools/RegisterMllm.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  mllm::registerAllMllmPasses();
  mllm::registerAllSchedPasses();
  mlir::DialectRegistry registry;
  mllm::registerAllMllmDialects(registry);
  mllm::registerSchedDialect(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "mllm optimizer driver\n", registry));
}
