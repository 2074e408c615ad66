//===- ValueTest.cpp - numbers, units and dimension rules -----------------===//
//
// sema::evaluate on expressions parsed from text: unit scales (counts are
// binary multiples, bytes and bandwidths decimal unless written with "i",
// bits per second are eighths of bytes), the dimension rules of + - * /,
// and the errors for unknown units, mixed dimensions and division by zero.
//
//===----------------------------------------------------------------------===//
#include "Value.h"
#include "TestUtil.h"

#include "gtest/gtest.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::sema;
using mllm::test::Harness;
using mllm::test::join;

namespace {

class ValueTest : public ::testing::Test {
protected:
  /// Evaluates `expr` written as the value of a field.
  Value eval(llvm::StringRef expr) {
    std::string text = ("t { v = " + expr + "; }").str();
    files.push_back(h.parse(text));
    const ast::File &file = *files.back();
    EXPECT_EQ(h.diags.numErrors(), 0u) << join(h.messages);
    if (file.blocks.empty() || file.blocks[0]->fields.empty())
      return Value();
    return evaluate(*file.blocks[0]->fields[0].value, h.diags);
  }

  /// Evaluates `expr`, expecting a number of dimension `dim`.
  double number(llvm::StringRef expr, Dim dim) {
    Value v = eval(expr);
    EXPECT_TRUE(v.valid()) << expr.str() << "\n" << join(h.messages);
    EXPECT_EQ(v.kind, Value::Kind::Number) << expr.str();
    EXPECT_EQ(v.dim, dim) << expr.str() << " is " << v.describe();
    return v.number;
  }

  Harness h;
  std::vector<std::unique_ptr<ast::File>> files;
};

TEST_F(ValueTest, CountSuffixesAreBinary) {
  EXPECT_EQ(number("4k", Dim::None), 4096);
  EXPECT_EQ(number("4K", Dim::None), 4096);
  EXPECT_EQ(number("128k", Dim::None), 131072);
  EXPECT_EQ(number("2M", Dim::None), 2097152);
  EXPECT_EQ(number("1G", Dim::None), 1073741824);
  // 1.5k is a whole number of tokens, so it stays an integer.
  Value v = eval("1.5k");
  EXPECT_EQ(v.number, 1536);
  EXPECT_TRUE(v.isInteger);
  EXPECT_FALSE(eval("1.5").isInteger);
  EXPECT_TRUE(eval("1_000").isInteger);
  EXPECT_EQ(eval("1_000").number, 1000);
}

TEST_F(ValueTest, Bytes) {
  EXPECT_EQ(number("48GiB", Dim::Bytes), 48.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(number("1TiB", Dim::Bytes), 1099511627776.0);
  EXPECT_EQ(number("512MiB", Dim::Bytes), 512.0 * 1024 * 1024);
  EXPECT_EQ(number("80GB", Dim::Bytes), 80e9);
  EXPECT_EQ(number("3KB", Dim::Bytes), 3000);
  EXPECT_EQ(number("7B", Dim::Bytes), 7);
}

TEST_F(ValueTest, Bandwidth) {
  // Bits per second are an eighth of bytes per second.
  EXPECT_EQ(number("200Gbps", Dim::Bandwidth), 200e9 / 8);
  EXPECT_EQ(number("200Gb/s", Dim::Bandwidth), 25e9);
  EXPECT_EQ(number("1Tbps", Dim::Bandwidth), 1e12 / 8);
  EXPECT_EQ(number("600GB/s", Dim::Bandwidth), 600e9);
  EXPECT_DOUBLE_EQ(number("3.35TB/s", Dim::Bandwidth), 3.35e12);
  EXPECT_EQ(number("1GiB/s", Dim::Bandwidth), 1073741824.0);
}

TEST_F(ValueTest, ComputeAndTime) {
  EXPECT_DOUBLE_EQ(number("312TFLOPS", Dim::Flops), 312e12);
  EXPECT_DOUBLE_EQ(number("989TFLOP/s", Dim::Flops), 989e12);
  EXPECT_EQ(number("2PFLOPS", Dim::Flops), 2e15);
  EXPECT_DOUBLE_EQ(number("10ms", Dim::Time), 0.01);
  EXPECT_DOUBLE_EQ(number("250us", Dim::Time), 250e-6);
  EXPECT_EQ(number("30s", Dim::Time), 30);
  EXPECT_EQ(number("2min", Dim::Time), 120);
  EXPECT_EQ(number("1h", Dim::Time), 3600);
}

TEST_F(ValueTest, ExponentsAreNotUnits) {
  EXPECT_DOUBLE_EQ(number("1e-4", Dim::None), 1e-4);
  EXPECT_DOUBLE_EQ(number("2.5E3", Dim::None), 2500);
  EXPECT_FALSE(eval("1e3").isInteger);
  // An exponent followed by a unit.
  EXPECT_DOUBLE_EQ(number("1e3GB", Dim::Bytes), 1e12);
}

TEST_F(ValueTest, ArithmeticKeepsDimensions) {
  EXPECT_EQ(number("40GiB + 8GiB", Dim::Bytes), 48.0 * 1073741824);
  EXPECT_EQ(number("48GiB - 16GiB", Dim::Bytes), 32.0 * 1073741824);
  EXPECT_EQ(number("2 * 24GiB", Dim::Bytes), 48.0 * 1073741824);
  EXPECT_EQ(number("24GiB * 2", Dim::Bytes), 48.0 * 1073741824);
  EXPECT_EQ(number("48GiB / 2", Dim::Bytes), 24.0 * 1073741824);
  // Same dimensions divide to a plain number.
  EXPECT_EQ(number("48GiB / 24GiB", Dim::None), 2);
  EXPECT_DOUBLE_EQ(number("1s / 10ms", Dim::None), 100);
  EXPECT_EQ(number("1.6Tbps / 8", Dim::Bandwidth), 25e9);
  // Precedence and parentheses.
  EXPECT_EQ(number("2 + 3 * 4", Dim::None), 14);
  EXPECT_EQ(number("(2 + 3) * 4", Dim::None), 20);
  EXPECT_EQ(number("-(2 - 5)", Dim::None), 3);
  EXPECT_EQ(number("1k - 24", Dim::None), 1000);
}

TEST_F(ValueTest, IntegerDivisionIsExactOrNotAnInteger) {
  Value exact = eval("4k / 4");
  EXPECT_TRUE(exact.isInteger);
  EXPECT_EQ(exact.number, 1024);
  Value inexact = eval("7 / 2");
  EXPECT_FALSE(inexact.isInteger);
  EXPECT_EQ(inexact.number, 3.5);
}

/// Evaluates `expr` expecting one error; returns it ("LINE:COL: ...").
static std::string evalError(llvm::StringRef expr) {
  Harness h;
  std::string text = ("t { v = " + expr + "; }").str();
  auto file = h.parse(text);
  EXPECT_EQ(h.diags.numErrors(), 0u) << join(h.messages);
  Value v = evaluate(*file->blocks[0]->fields[0].value, h.diags);
  EXPECT_FALSE(v.valid()) << expr.str();
  EXPECT_EQ(h.messages.size(), 1u) << join(h.messages);
  return h.messages.empty() ? "" : h.messages.front();
}

TEST(ValueErrors, MixedDimensions) {
  // Columns are 1-based; the value starts at column 9 of "t { v = ...".
  EXPECT_EQ(evalError("40GiB + 1s"),
            "1:9: error: cannot add a size in bytes and a duration");
  EXPECT_EQ(evalError("1TFLOPS - 1GB/s"),
            "1:9: error: cannot subtract a compute rate and a bandwidth");
  EXPECT_EQ(evalError("1GiB * 2GiB"),
            "1:9: error: cannot multiply a size in bytes by a size in bytes");
  EXPECT_EQ(evalError("2TB/s / 1s"),
            "1:9: error: cannot divide a bandwidth by a duration");
  EXPECT_EQ(evalError("\"a\" + 1"), "1:9: error: arithmetic needs numbers, "
                                    "got a string");
  EXPECT_EQ(evalError("-rmsnorm"), "1:9: error: cannot negate the name "
                                   "'rmsnorm'");
}

TEST(ValueErrors, DivisionByZeroPointsAtTheDivisor) {
  EXPECT_EQ(evalError("8 / 0"), "1:13: error: division by zero");
  // A divisor that evaluates to zero.
  std::string computed = evalError("8 / (4 - 4)");
  EXPECT_NE(computed.find("error: division by zero"), std::string::npos)
      << computed;
}

TEST(ValueErrors, UnknownUnits) {
  EXPECT_EQ(evalError("100TFLOP"),
            "1:9: error: unknown unit 'TFLOP'; did you mean 'TFLOPS'?");
  EXPECT_EQ(evalError("5msec"),
            "1:9: error: unknown unit 'msec'; did you mean 'ms'?");
  std::string none = evalError("3parsecs");
  EXPECT_NE(none.find("unknown unit 'parsecs'; units are"), std::string::npos)
      << none;
}

TEST(ValueDescribe, Kinds) {
  Value v;
  EXPECT_EQ(v.describe(), "an invalid value");
  v.kind = Value::Kind::Number;
  v.isInteger = true;
  EXPECT_EQ(v.describe(), "an integer");
  v.isInteger = false;
  EXPECT_EQ(v.describe(), "a number");
  v.dim = Dim::Bandwidth;
  EXPECT_EQ(v.describe(), "a bandwidth");
  v.kind = Value::Kind::Ident;
  v.text = "auto";
  EXPECT_EQ(v.describe(), "the name 'auto'");
  v.kind = Value::Kind::Call;
  v.text = "at";
  EXPECT_EQ(v.describe(), "'at(...)'");
  EXPECT_STREQ(describe(Dim::Flops), "a compute rate");
  EXPECT_STREQ(describe(Dim::Time), "a duration");
}

TEST(ValueUnits, KnownUnitsListsEveryFamily) {
  std::vector<std::string> units = knownUnits();
  for (const char *u : {"k", "GiB", "GB", "GB/s", "Gbps", "TFLOPS", "s", "ms"})
    EXPECT_NE(std::find(units.begin(), units.end(), u), units.end()) << u;
}

} // namespace
