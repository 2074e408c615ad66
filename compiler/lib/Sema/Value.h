//===- Value.h - evaluated field values with units --------------*- C++ -*-===//
#ifndef MLLM_LIB_SEMA_VALUE_H
#define MLLM_LIB_SEMA_VALUE_H

#include "mllm/AST/AST.h"
#include "mllm/Support/Diagnostics.h"

#include <optional>
#include <string>
#include <vector>

namespace mllm::sema {

/// Physical dimension of a number after unit conversion to SI-like bases:
/// bytes, bytes/s, FLOP/s, seconds.
enum class Dim { None, Bytes, Bandwidth, Flops, Time };
const char *describe(Dim dim);

struct Value {
  enum class Kind { Invalid, Number, String, Ident, List, Call };
  Kind kind = Kind::Invalid;
  double number = 0;
  bool isInteger = false;
  Dim dim = Dim::None;
  std::string text; ///< String value, identifier, or callee.
  std::vector<Value> elems;
  llvm::SMRange range;

  bool valid() const { return kind != Kind::Invalid; }
  /// "an integer", "a size in bytes", "the name 'x'", ... for messages.
  std::string describe() const;
};

/// Evaluates an expression: numbers with units, + - * / with dimension
/// checks, lists and calls. Errors are reported and yield an invalid Value.
/// `expected`: the dimension of the field's numbers, where it has one; an
/// unknown unit's suggestion is one of that dimension.
Value evaluate(const ast::Expr &expr, Diagnostics &diags,
               std::optional<Dim> expected = std::nullopt);

/// A number as a user wrote it: integers without a fraction, others short.
std::string formatNumber(double value);

/// All unit suffixes, for documentation and suggestions.
std::vector<std::string> knownUnits();

} // namespace mllm::sema

#endif // MLLM_LIB_SEMA_VALUE_H
