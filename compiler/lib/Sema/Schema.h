//===- Schema.h - which fields each block kind accepts ----------*- C++ -*-===//
//
// One table per block kind: field name, type and a one-line description.
// Semantic analysis checks every field against it (unknown names get a
// "did you mean"), and docs/language.md mirrors it.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_LIB_SEMA_SCHEMA_H
#define MLLM_LIB_SEMA_SCHEMA_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

namespace mllm::sema {

enum class Type {
  Int,       ///< integer, count suffixes allowed (4k)
  Float,     ///< plain number
  Bool,      ///< true / false
  Bytes,     ///< 48GiB
  Bandwidth, ///< 200Gbps, 600GB/s
  Flops,     ///< 312TFLOPS
  Duration,  ///< 30s, 10ms
  Enum,      ///< one of `choices` ("a|b|c")
  Name,      ///< a reference to a declaration
  IntList,   ///< [4, 4, 8]
  Placement, ///< prepend | append | at(0.5, ...)
  Size2D,    ///< 384 or [1280, 720]
  IntOrAuto, ///< 4 or auto
  Recompute, ///< true | false | none | full | selective
};

struct FieldSpec {
  const char *name;
  Type type;
  const char *choices; ///< For Enum: "a|b|c"; otherwise null.
  const char *doc;
};

using Schema = llvm::ArrayRef<FieldSpec>;

Schema decoderSchema();
Schema visionSchema();
Schema audioSchema();
Schema hardwareSchema();
Schema modelSchema();
Schema
partSiteSchema(); ///< Fields of `encoder`/`llm` blocks besides arch ones.
Schema projectorSchema();
Schema dataSchema();
Schema modalitySchema();
Schema clusterSchema();
Schema parallelSchema();
Schema partParallelSchema();
Schema trainSchema();

const FieldSpec *lookup(Schema schema, llvm::StringRef name);

} // namespace mllm::sema

#endif // MLLM_LIB_SEMA_SCHEMA_H
