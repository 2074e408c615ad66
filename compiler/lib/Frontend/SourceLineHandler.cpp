//===- SourceLineHandler.cpp - diagnostics with a clipped source line -----===//
#include "mllm/Support/SourceLineHandler.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/SourceMgr.h"

#include <algorithm>

using namespace mllm;

namespace {
/// Bytes of a long line shown before the column, and in all.
constexpr size_t kBefore = 60, kWindow = 120;
} // namespace

SourceLineHandler::SourceLineHandler(llvm::SourceMgr &mgr,
                                     mlir::MLIRContext *context)
    : mlir::SourceMgrDiagnosticHandler(mgr, context) {
  setHandler([this](mlir::Diagnostic &diag) { emit(diag); });
}

std::optional<SourceLineHandler::OwnLine>
SourceLineHandler::ownLine(mlir::FileLineColLoc loc) {
  const llvm::MemoryBuffer *buffer =
      getBufferForFile(loc.getFilename().getValue());
  if (!buffer || loc.getLine() == 0)
    return std::nullopt;
  for (unsigned id = 1; id <= mgr.getNumBuffers(); ++id) {
    if (mgr.getMemoryBuffer(id) != buffer)
      continue;
    llvm::SMLoc start = mgr.FindLocForLineAndColumn(id, loc.getLine(), 1);
    if (!start.isValid())
      return std::nullopt;
    llvm::StringRef rest(start.getPointer(),
                         buffer->getBufferEnd() - start.getPointer());
    llvm::StringRef line = rest.take_until([](char c) { return c == '\n'; });
    line.consume_back("\r");
    if (line.size() <= kMaxShownLine &&
        llvm::none_of(line, [](char c) { return c & 0x80; }))
      return std::nullopt;
    return OwnLine{line, id};
  }
  return std::nullopt;
}

void SourceLineHandler::emitClipped(mlir::FileLineColLoc loc,
                                    const llvm::Twine &message,
                                    mlir::DiagnosticSeverity kind,
                                    const OwnLine &own) {
  // The include chain, as the SourceMgr prints it before a message.
  mgr.PrintIncludeStack(mgr.getBufferInfo(own.buffer).IncludeLoc, os);
  emitDiagnostic(loc, message, kind, /*displaySourceLine=*/false);
  llvm::StringRef line = own.text;
  auto continuation = [&](size_t i) {
    return i < line.size() && (line[i] & 0xC0) == 0x80;
  };
  size_t column =
      std::min<size_t>(std::max(loc.getColumn(), 1u) - 1, line.size());
  // A line short enough to read (one here for its non-ASCII text) whole.
  bool whole = line.size() <= kMaxShownLine;
  size_t begin = whole || column <= kBefore ? 0 : column - kBefore;
  size_t end = whole ? line.size() : std::min(line.size(), begin + kWindow);
  // Whole UTF-8 characters only.
  while (begin > 0 && continuation(begin))
    --begin;
  while (continuation(end))
    ++end;
  llvm::StringRef shown = line.slice(begin, end);
  llvm::StringRef head = begin > 0 ? "..." : "";
  os << head << shown << (end < line.size() ? "..." : "") << "\n";
  // One column per character (not per byte) up to the caret.
  std::string caret(head.size(), ' ');
  for (size_t i = begin; i < column; ++i)
    if (!continuation(i))
      caret += line[i] == '\t' ? '\t' : ' ';
  os << caret << "^\n";
}

void SourceLineHandler::emit(mlir::Diagnostic &diag) {
  auto showOne = [&](mlir::Location loc, const llvm::Twine &message,
                     mlir::DiagnosticSeverity kind) {
    auto file = llvm::dyn_cast<mlir::FileLineColLoc>(loc);
    if (std::optional<OwnLine> line = file ? ownLine(file) : std::nullopt)
      emitClipped(file, message, kind, *line);
    else
      emitDiagnostic(loc, message, kind);
  };
  auto isOwn = [&](mlir::Location loc) {
    auto file = llvm::dyn_cast<mlir::FileLineColLoc>(loc);
    return file && ownLine(file);
  };
  if (!isOwn(diag.getLocation()) &&
      llvm::none_of(diag.getNotes(), [&](mlir::Diagnostic &note) {
        return isOwn(note.getLocation());
      })) {
    // MLIR's own rendering, notes, call stacks and all.
    emitDiagnostic(diag);
    return;
  }
  showOne(diag.getLocation(), diag.str(), diag.getSeverity());
  for (mlir::Diagnostic &note : diag.getNotes())
    showOne(note.getLocation(), note.str(), note.getSeverity());
}
