//===- Diagnostics.cpp - front-end diagnostics ----------------------------===//
#include "mllm/Support/Diagnostics.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/MLIRContext.h"

using namespace mllm;

mlir::Location Diagnostics::loc(llvm::SMLoc pos) const {
  unsigned id = pos.isValid() ? srcMgr.FindBufferContainingLoc(pos) : 0;
  if (id == 0)
    return mlir::UnknownLoc::get(&context);
  auto [line, col] = srcMgr.getLineAndColumn(pos, id);
  llvm::StringRef file = srcMgr.getMemoryBuffer(id)->getBufferIdentifier();
  return mlir::FileLineColLoc::get(&context, file, line, col);
}

mlir::InFlightDiagnostic Diagnostics::error(llvm::SMLoc pos) {
  ++errors;
  return mlir::emitError(loc(pos));
}

mlir::InFlightDiagnostic Diagnostics::warning(llvm::SMLoc pos) {
  return mlir::emitWarning(loc(pos));
}

void Diagnostics::note(mlir::InFlightDiagnostic &diag, llvm::SMLoc pos,
                       const llvm::Twine &message) const {
  diag.attachNote(loc(pos)) << message;
}
