//===- Diagnostics.h - front-end diagnostics --------------------*- C++ -*-===//
//
// Front-end diagnostics go through MLIR's diagnostic engine at FileLineColLoc
// locations computed from llvm::SMLoc, so the driver's SourceMgr handler
// prints them clang-style with the source line and a caret, and
// --verify-diagnostics can check them.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SUPPORT_DIAGNOSTICS_H
#define MLLM_SUPPORT_DIAGNOSTICS_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"

namespace mllm {

class Diagnostics {
public:
  Diagnostics(llvm::SourceMgr &srcMgr, mlir::MLIRContext &context)
      : srcMgr(srcMgr), context(context) {}

  /// The MLIR location of a position in one of the SourceMgr's buffers.
  mlir::Location loc(llvm::SMLoc pos) const;

  mlir::InFlightDiagnostic error(llvm::SMLoc pos);
  mlir::InFlightDiagnostic error(llvm::SMRange range) {
    return error(range.Start);
  }
  mlir::InFlightDiagnostic warning(llvm::SMLoc pos);
  mlir::InFlightDiagnostic warning(llvm::SMRange range) {
    return warning(range.Start);
  }
  /// Attaches a note at `pos` to `diag`.
  void note(mlir::InFlightDiagnostic &diag, llvm::SMLoc pos,
            const llvm::Twine &message) const;
  void note(mlir::InFlightDiagnostic &diag, llvm::SMRange range,
            const llvm::Twine &message) const {
    note(diag, range.Start, message);
  }

  unsigned numErrors() const { return errors; }
  llvm::SourceMgr &getSourceMgr() { return srcMgr; }
  mlir::MLIRContext &getContext() { return context; }

private:
  llvm::SourceMgr &srcMgr;
  mlir::MLIRContext &context;
  unsigned errors = 0;
};

} // namespace mllm

#endif // MLLM_SUPPORT_DIAGNOSTICS_H
