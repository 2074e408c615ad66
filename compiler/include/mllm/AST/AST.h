//===- AST.h - the .mllm syntax tree ----------------------------*- C++ -*-===//
//
// A plain syntax tree: no ANTLR, no MLIR. Every node carries the source range
// of its text (llvm::SMRange into the SourceMgr that owns the file), so that
// semantic diagnostics can point at the exact characters.
//
// The language is regular: a file is imports plus blocks; a block has a kind,
// an optional name and base, fields (`name = expr;`) and nested blocks.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_AST_AST_H
#define MLLM_AST_AST_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace mllm::ast {

/// A name with the range it was spelled at.
struct Ident {
  std::string name;
  llvm::SMRange range;
  bool empty() const { return name.empty(); }
};

struct Expr {
  enum class Kind { Number, String, Ident, List, Call, Binary, Negate };
  Kind kind;
  llvm::SMRange range;

  /// Number: the digits as written (without unit) and the unit suffix.
  std::string text;
  std::string unit;
  /// String literal value (unescaped) or identifier / callee name.
  std::string name;
  /// Binary operator: one of + - * /.
  char op = 0;
  /// Operands: list elements, call arguments, binary lhs/rhs, negated value.
  std::vector<std::unique_ptr<Expr>> operands;

  explicit Expr(Kind kind) : kind(kind) {}
};

struct Field {
  Ident name;
  std::unique_ptr<Expr> value;
  llvm::SMRange range;
};

struct Block {
  Ident kind;
  Ident name; ///< May be empty.
  Ident base; ///< May be empty.
  std::vector<Field> fields;
  std::vector<std::unique_ptr<Block>> blocks;
  /// Fields and blocks in source order, for printing.
  llvm::SmallVector<std::pair<bool, unsigned>> order;
  llvm::SMRange range;
  bool hasBody = true; ///< false for `kind name;`
};

struct Import {
  std::string target; ///< The string path or the dotted name.
  bool isPath = false;
  llvm::SMRange range;
};

struct File {
  std::string path;
  unsigned bufferId = 0;
  std::vector<Import> imports;
  std::vector<std::unique_ptr<Block>> blocks;
};

/// Prints a file as an indented tree (`mllmc --emit=ast`).
void dump(const File &file, llvm::raw_ostream &os);
void dump(const Expr &expr, llvm::raw_ostream &os);

} // namespace mllm::ast

#endif // MLLM_AST_AST_H
