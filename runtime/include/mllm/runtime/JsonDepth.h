//===- JsonDepth.h - JSON nesting depth before parsing ----------*- C++ -*-===//
//
// llvm::json::parse recurses once per level of [ and {, so text from a
// file (a safetensors header, a manifest line) is measured first: a line of
// 100000 '[' overflows the stack (or deadlocks in the crash handler). The
// scanners that find duplicate keys before parsing (llvm::json keeps the
// last copy silently) skip strings the same way.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_JSONDEPTH_H
#define MLLM_RUNTIME_JSONDEPTH_H

#include "llvm/ADT/StringRef.h"

#include <algorithm>

namespace mllm::runtime {

/// The index of the '"' that closes the string opened at `open` (a '"'),
/// past escapes; text.size() when the text ends inside it.
inline size_t jsonStringEnd(llvm::StringRef text, size_t open) {
  size_t j = open + 1;
  while (j < text.size() && text[j] != '"')
    j += text[j] == '\\' ? 2 : 1;
  return std::min(j, text.size());
}

/// Deepest nesting of [ and { outside strings. On invalid JSON the scan
/// agrees with the parser up to the parser's first error, so it bounds the
/// parser's depth.
inline unsigned jsonNestingDepth(llvm::StringRef text) {
  unsigned depth = 0, deepest = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_JSONDEPTH_H
