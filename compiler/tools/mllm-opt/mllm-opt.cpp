//===- mllm-opt.cpp - the mllm optimizer driver ---------------------------===//
//
// MlirOptMain with the mllm dialects and passes, for tests and debugging.
// The output goes through the driver's OutputFile, as every tool's does: it
// appears only when the run succeeds, never replaces the input, and a write
// error is reported with the file's name.
//
//===----------------------------------------------------------------------===//
#include "mllm/Driver/Driver.h"
#include "mllm/Tools/RegisterMllm.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/WithColor.h"

#include <cstdio>

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerTransformsPasses();
  mllm::registerAllMllmPasses();
  mllm::registerAllSchedPasses();
  mlir::DialectRegistry registry;
  mllm::registerAllMllmDialects(registry);
  mllm::registerSchedDialect(registry);

  // MlirOptMain's own command line and steps, with its output file replaced.
  auto [inputFile, outputFile] = mlir::registerAndParseCLIOptions(
      argc, argv, "mllm optimizer driver\n", registry);
  mlir::MlirOptMainConfig config =
      mlir::MlirOptMainConfig::createFromCLOptions();
  if (config.shouldShowDialects()) {
    llvm::outs() << "Available Dialects: ";
    llvm::interleave(registry.getDialectNames(), llvm::outs(), ",");
    llvm::outs() << "\n";
    return 0;
  }
  if (config.shouldListPasses()) {
    mlir::printRegisteredPasses();
    return 0;
  }
  auto fail = [](const llvm::Twine &message) {
    llvm::WithColor::error(llvm::errs(), "mllm-opt") << message << "\n";
    return 1;
  };
  // Before the input is read: writing it would destroy it.
  if (llvm::Error error = mllm::checkOutputNotInput(outputFile, {inputFile}))
    return fail(llvm::toString(std::move(error)));
  if (inputFile == "-" &&
      llvm::sys::Process::FileDescriptorIsDisplayed(fileno(stdin)))
    llvm::errs() << "(processing input from stdin now, hit ctrl-c/ctrl-d to "
                    "interrupt)\n";
  // A spec is not IR: its first 'import' would be "custom op 'import' is
  // unknown".
  if (llvm::StringRef(inputFile).ends_with(".mllm"))
    return fail("'" + inputFile +
                "' is a .mllm spec, not IR; compile it with 'mllmc " +
                inputFile + " --emit=mllm' (or --emit=sched) and pass that");
  std::string message;
  auto input = mllm::openInputFile(inputFile, message);
  if (!input)
    return fail(message);
  auto output = mllm::OutputFile::open(outputFile);
  if (!output)
    return fail(llvm::toString(output.takeError()));
  if (failed(mlir::MlirOptMain((*output)->os(), std::move(input), registry,
                               config)))
    return 1; // The output is discarded; an existing file stays as it was.
  if (llvm::Error error = (*output)->commit())
    return fail(llvm::toString(std::move(error)));
  return 0;
}
