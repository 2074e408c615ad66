//===- TestUtil.cpp - shared helpers of the front-end unit tests ----------===//
#include "TestUtil.h"

#include "mllm/Frontend/Parse.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mllm;
using namespace mllm::test;

static std::string severity(mlir::DiagnosticSeverity s) {
  switch (s) {
  case mlir::DiagnosticSeverity::Error:
    return "error";
  case mlir::DiagnosticSeverity::Warning:
    return "warning";
  case mlir::DiagnosticSeverity::Note:
    return "note";
  case mlir::DiagnosticSeverity::Remark:
    return "remark";
  }
  return "?";
}

static std::string format(const mlir::Diagnostic &d) {
  std::string out;
  if (auto flc = llvm::dyn_cast<mlir::FileLineColLoc>(d.getLocation()))
    out = std::to_string(flc.getLine()) + ":" +
          std::to_string(flc.getColumn()) + ": ";
  else
    out = "?:?: ";
  return out + severity(d.getSeverity()) + ": " + d.str();
}

Harness::Harness() {
  handler = std::make_unique<mlir::ScopedDiagnosticHandler>(
      &context, [this](mlir::Diagnostic &d) {
        messages.push_back(format(d));
        for (const mlir::Diagnostic &note : d.getNotes())
          messages.push_back("  " + format(note));
        return mlir::success();
      });
}

unsigned Harness::add(llvm::StringRef text, llvm::StringRef name) {
  return srcMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(text, name), llvm::SMLoc());
}

std::unique_ptr<ast::File> Harness::parse(llvm::StringRef text) {
  return parseBuffer(add(text), diags);
}

std::optional<spec::Job> Harness::analyze(llvm::StringRef text, bool requireJob,
                                          spec::Library *library) {
  LoadOptions options;
  program = loadProgram(add(text), options, diags);
  if (!program || diags.numErrors())
    return std::nullopt;
  return mllm::analyze(*program, diags, requireJob, library);
}

std::pair<unsigned, unsigned> Harness::lineCol(llvm::SMLoc loc) const {
  return srcMgr.getLineAndColumn(loc);
}

std::string mllm::test::join(const std::vector<std::string> &messages) {
  std::string out;
  for (const std::string &m : messages)
    out += m + "\n";
  return out;
}
