//===- Rules.h - rules of a job that the front end and IR share -*- C++ -*-===//
//
// A rule the front end checks at the spec's field and the mllm verifier
// checks on IR lives here once, with its message, so that the two cannot
// drift apart.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_DIALECT_MLLM_IR_RULES_H
#define MLLM_DIALECT_MLLM_IR_RULES_H

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mllm::rules {

/// Context parallelism splits the LLM's packed sequence across ranks; an
/// encoder's items are whole samples with no sequence to split. Returns the
/// error for `part` with degree `cp`, if any.
inline std::optional<std::string> contextParallelPart(llvm::StringRef part,
                                                      bool isLLM, int64_t cp) {
  if (cp <= 1 || isLLM)
    return std::nullopt;
  return ("context parallelism applies to the LLM only; remove cp from "
          "encoder '" +
          part + "' (it has cp " + llvm::Twine(cp) + ")")
      .str();
}

} // namespace mllm::rules

#endif // MLLM_DIALECT_MLLM_IR_RULES_H
