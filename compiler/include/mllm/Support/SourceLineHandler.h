//===- SourceLineHandler.h - diagnostics with a clipped source line -*- C++
//-*-===//
//
// The tools print diagnostics as MLIR's SourceMgr handler does (clang
// style, the source line under the message with a caret), except that a
// source line too long to read is shown as a window around the column:
// a spec, plan or .mlir written on one line (generated, minified, or a
// stream without newlines) echoed every diagnostic's whole line, megabytes
// of it, and a caret line as long. A line with non-ASCII text is drawn here
// too: llvm::SMDiagnostic leaves out the caret of such a line.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SUPPORT_SOURCELINEHANDLER_H
#define MLLM_SUPPORT_SOURCELINEHANDLER_H

#include "mlir/IR/Diagnostics.h"

#include <optional>

namespace mllm {

class SourceLineHandler : public mlir::SourceMgrDiagnosticHandler {
public:
  /// Lines up to this many bytes are shown whole.
  static constexpr size_t kMaxShownLine = 160;

  SourceLineHandler(llvm::SourceMgr &mgr, mlir::MLIRContext *context);

private:
  struct OwnLine {
    llvm::StringRef text;
    unsigned buffer; ///< The SourceMgr's buffer holding it.
  };
  void emit(mlir::Diagnostic &diag);
  /// The source line of `loc` when this handler draws it: longer than
  /// kMaxShownLine, or holding non-ASCII text.
  std::optional<OwnLine> ownLine(mlir::FileLineColLoc loc);
  /// The include chain and the message at `loc`, then a window of the line
  /// around its column (whole UTF-8 characters, the caret under the
  /// character at the column).
  void emitClipped(mlir::FileLineColLoc loc, const llvm::Twine &message,
                   mlir::DiagnosticSeverity kind, const OwnLine &line);
};

} // namespace mllm

#endif // MLLM_SUPPORT_SOURCELINEHANDLER_H
