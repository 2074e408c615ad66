//===- ParserTest.cpp - the syntax tree and its positions -----------------===//
//
// parseBuffer's AST as ast::dump prints it, and the positions it records:
// columns are byte columns (as the SourceMgr counts), also after UTF-8
// text, while ANTLR itself counts code points.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cstring>

using namespace mllm;
using mllm::test::Harness;
using mllm::test::join;

namespace {

std::string dump(const ast::File &file) {
  std::string out;
  llvm::raw_string_ostream os(out);
  ast::dump(file, os);
  return out;
}

TEST(Parser, DumpsTheTree) {
  Harness h;
  auto file = h.parse(R"(import llama;
import models.qwen;
import "./mine.mllm";

// A comment, and /* another */ one.
instance small : llama3 {
  layers = 2 * (3 + 4);
  hidden = -1k;
  image = [1280, 720,];
  placement = at(0.25, 0.75);
  name = "a\"b";
  projector mlp;
  nested {
    theta = 1e-4;
    memory = 48GiB;
    bw = 3.35TB/s;
  }
}
data { }
)");
  ASSERT_TRUE(file);
  EXPECT_EQ(h.diags.numErrors(), 0u) << join(h.messages);
  EXPECT_EQ(dump(*file), R"(File test.mllm
  Import llama
  Import models.qwen
  Import "./mine.mllm"
  Block instance 'small' : llama3
    Field layers = (2 * (3 + 4))
    Field hidden = -1k
    Field image = [1280, 720]
    Field placement = at(0.25, 0.75)
    Field name = "a\"b"
    Block projector 'mlp'
    Block nested
      Field theta = 1e-4
      Field memory = 48GiB
      Field bw = 3.35TB/s
  Block data
)");
  // Number literals keep their digits and unit apart.
  const ast::Block &b = *file->blocks[0];
  const ast::Expr &bw = *b.blocks[1]->fields[2].value;
  EXPECT_EQ(bw.text, "3.35");
  EXPECT_EQ(bw.unit, "TB/s");
  const ast::Expr &theta = *b.blocks[1]->fields[0].value;
  EXPECT_EQ(theta.text, "1e-4");
  EXPECT_EQ(theta.unit, "");
  EXPECT_FALSE(b.blocks[0]->hasBody);
  EXPECT_TRUE(file->imports[2].isPath);
  EXPECT_EQ(file->imports[2].target, "./mine.mllm");
  EXPECT_FALSE(file->imports[1].isPath);
}

TEST(Parser, ColumnsAreBytesAfterUTF8) {
  Harness h;
  // "é" and "ü" are two bytes each: `family` is the 11th character of
  // line 2 but starts at byte 13.
  auto file =
      h.parse("// naïve\n/* é ü */ family f : decoder { layers = 2; }\n");
  ASSERT_TRUE(file);
  ASSERT_EQ(file->blocks.size(), 1u);
  const ast::Block &b = *file->blocks[0];
  EXPECT_EQ(h.lineCol(b.kind.range.Start), std::make_pair(2u, 13u));
  EXPECT_EQ(h.lineCol(b.name.range.Start), std::make_pair(2u, 20u));
  EXPECT_EQ(h.lineCol(b.base.range.Start), std::make_pair(2u, 24u));
  ASSERT_EQ(b.fields.size(), 1u);
  EXPECT_EQ(h.lineCol(b.fields[0].name.range.Start), std::make_pair(2u, 34u));
  EXPECT_EQ(h.lineCol(b.fields[0].value->range.Start), std::make_pair(2u, 43u));
  // The range ends after the last byte of its token.
  EXPECT_EQ(h.lineCol(b.fields[0].value->range.End), std::make_pair(2u, 44u));
}

TEST(Parser, SyntaxErrorsAfterUTF8HaveByteColumns) {
  Harness h;
  auto file = h.parse("/* ☃ */ family f : decoder { layers = 1 }\n");
  ASSERT_TRUE(file);
  // "☃" is three bytes: '}' is character 41 but byte 43.
  ASSERT_EQ(h.messages.size(), 1u) << join(h.messages);
  EXPECT_EQ(h.messages[0], "1:43: error: expected ';' before '}'");
}

TEST(Parser, RecoversAndReportsEveryError) {
  Harness h;
  auto file = h.parse("family a : decoder { x = 1 }\n"
                      "family b : decoder { y = ; }\n"
                      "family c : decoder { z = 3; }\n");
  ASSERT_TRUE(file);
  EXPECT_EQ(h.messages.size(), 2u) << join(h.messages);
  EXPECT_EQ(h.diags.numErrors(), 2u);
  // What could be recovered is still in the tree.
  ASSERT_EQ(file->blocks.size(), 3u);
  EXPECT_EQ(file->blocks[2]->name.name, "c");
  ASSERT_EQ(file->blocks[2]->fields.size(), 1u);
}

TEST(Parser, RefusesLongOperatorChains) {
  // 50000 unary '-' overflowed the parser's stack, 50000 '+' the AST
  // builder's; 256 operators per value are allowed.
  for (const char *op : {"-", "1+"}) {
    Harness h;
    std::string chain;
    for (int i = 0; i < 50000; ++i)
      chain += op;
    auto file = h.parse("t { v = " + chain + "1; }");
    ASSERT_TRUE(file);
    ASSERT_EQ(h.messages.size(), 1u) << join(h.messages);
    // The 257th operator.
    const unsigned column =
        9 + 256 * (unsigned)std::strlen(op) + (unsigned)std::strlen(op) - 1;
    EXPECT_EQ(h.messages[0], "1:" + std::to_string(column) +
                                 ": error: more than 256 operators in one "
                                 "value; write the value, or a shorter "
                                 "expression");
    EXPECT_TRUE(file->blocks.empty());
  }
  Harness h;
  std::string chain;
  for (int i = 0; i < 256; ++i)
    chain += "1+";
  auto file = h.parse("t { v = " + chain + "1; w = " + chain + "1; }");
  ASSERT_TRUE(file);
  EXPECT_TRUE(h.messages.empty()) << join(h.messages);
}

TEST(Parser, RefusesDeepNesting) {
  Harness h;
  std::string deep =
      "t { v = " + std::string(200, '[') + "1" + std::string(200, ']') + "; }";
  auto file = h.parse(deep);
  ASSERT_TRUE(file);
  ASSERT_EQ(h.messages.size(), 1u) << join(h.messages);
  // The block's brace is level 1; the 128th '[' (column 9 + 127) is 129.
  EXPECT_EQ(h.messages[0], "1:136: error: nesting deeper than 128 levels; "
                           "simplify this expression or block");
  EXPECT_TRUE(file->blocks.empty());
}

} // namespace
