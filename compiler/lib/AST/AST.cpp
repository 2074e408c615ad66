//===- AST.cpp - printing the .mllm syntax tree ---------------------------===//
#include "mllm/AST/AST.h"

#include "llvm/ADT/StringExtras.h"

using namespace mllm::ast;

void mllm::ast::dump(const Expr &expr, llvm::raw_ostream &os) {
  switch (expr.kind) {
  case Expr::Kind::Number:
    os << expr.text << expr.unit;
    return;
  case Expr::Kind::String:
    os << '"';
    os.write_escaped(expr.name);
    os << '"';
    return;
  case Expr::Kind::Ident:
    os << expr.name;
    return;
  case Expr::Kind::List:
  case Expr::Kind::Call: {
    if (expr.kind == Expr::Kind::Call)
      os << expr.name;
    os << (expr.kind == Expr::Kind::List ? '[' : '(');
    llvm::ListSeparator sep;
    for (const auto &operand : expr.operands) {
      os << sep;
      dump(*operand, os);
    }
    os << (expr.kind == Expr::Kind::List ? ']' : ')');
    return;
  }
  case Expr::Kind::Binary:
    os << '(';
    dump(*expr.operands[0], os);
    os << ' ' << expr.op << ' ';
    dump(*expr.operands[1], os);
    os << ')';
    return;
  case Expr::Kind::Negate:
    os << "-";
    dump(*expr.operands[0], os);
    return;
  }
}

static void dumpBlock(const Block &block, llvm::raw_ostream &os,
                      unsigned indent) {
  os.indent(indent) << "Block " << block.kind.name;
  if (!block.name.empty())
    os << " '" << block.name.name << "'";
  if (!block.base.empty())
    os << " : " << block.base.name;
  os << "\n";
  for (auto [isField, index] : block.order) {
    if (isField) {
      const Field &field = block.fields[index];
      os.indent(indent + 2) << "Field " << field.name.name << " = ";
      dump(*field.value, os);
      os << "\n";
    } else {
      dumpBlock(*block.blocks[index], os, indent + 2);
    }
  }
}

void mllm::ast::dump(const File &file, llvm::raw_ostream &os) {
  os << "File " << file.path << "\n";
  for (const Import &import : file.imports)
    os << "  Import " << (import.isPath ? "\"" : "") << import.target
       << (import.isPath ? "\"" : "") << "\n";
  for (const auto &block : file.blocks)
    dumpBlock(*block, os, 2);
}
