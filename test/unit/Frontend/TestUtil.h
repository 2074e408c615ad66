//===- TestUtil.h - shared helpers of the front-end unit tests --*- C++ -*-===//
//
// A SourceMgr, an MLIRContext and a Diagnostics in one place, with every
// diagnostic captured as "LINE:COL: severity: message" (notes indented
// below their diagnostic), so tests can compare them as strings.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TEST_UNIT_FRONTEND_TESTUTIL_H
#define MLLM_TEST_UNIT_FRONTEND_TESTUTIL_H

#include "mllm/AST/AST.h"
#include "mllm/Sema/Sema.h"
#include "mllm/Support/Diagnostics.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mllm::test {

class Harness {
public:
  Harness();

  /// Adds `text` as a buffer named `name`; returns its id.
  unsigned add(llvm::StringRef text, llvm::StringRef name = "test.mllm");
  /// Parses `text` alone (no imports followed).
  std::unique_ptr<ast::File> parse(llvm::StringRef text);
  /// Loads `text` (imports resolve against no directory) and analyzes it.
  std::optional<spec::Job> analyze(llvm::StringRef text, bool requireJob,
                                   spec::Library *library = nullptr);

  /// Line and column (1-based, in bytes) of `loc` in the buffers.
  std::pair<unsigned, unsigned> lineCol(llvm::SMLoc loc) const;

  llvm::SourceMgr srcMgr;
  mlir::MLIRContext context;
  Diagnostics diags{srcMgr, context};
  /// "LINE:COL: error: message", in emission order.
  std::vector<std::string> messages;
  std::unique_ptr<Program> program;

private:
  std::unique_ptr<mlir::ScopedDiagnosticHandler> handler;
};

/// Joins captured messages with newlines, for readable failures.
std::string join(const std::vector<std::string> &messages);

} // namespace mllm::test

#endif // MLLM_TEST_UNIT_FRONTEND_TESTUTIL_H
