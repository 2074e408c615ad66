//===- Parse.h - .mllm text to syntax tree ---------------------*- C++ -*-===//
#ifndef MLLM_FRONTEND_PARSE_H
#define MLLM_FRONTEND_PARSE_H

#include "mllm/AST/AST.h"
#include "mllm/Support/Diagnostics.h"

#include <memory>

namespace mllm {

/// Parses buffer `bufferId` of the diagnostics' SourceMgr. Syntax errors are
/// reported through `diags` (all of them, with recovery); the returned tree
/// holds what could be recovered. Never throws, whatever the input.
std::unique_ptr<ast::File> parseBuffer(unsigned bufferId, Diagnostics &diags);

} // namespace mllm

#endif // MLLM_FRONTEND_PARSE_H
