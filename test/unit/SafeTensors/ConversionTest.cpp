//===- ConversionTest.cpp - Typed reads against known bit patterns --------===//
//
// BF16 and F16 to float/double from hand-picked bit patterns (normals,
// subnormals, signed zeros, infinities, NaN), an exhaustive F16 check
// against the compiler's own _Float16 where it has one, F64 narrowing,
// integer widening, and the conversions read() must refuse.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "llvm/ADT/bit.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

using namespace mllm::runtime;
using namespace mllm::testutil;

namespace {

/// A one-tensor file "t" holding `values` as `dtype`.
template <typename T>
SafeTensorsFile fileOf(DType dtype, const std::vector<T> &values) {
  SafeTensorsWriter writer;
  writer.add("t", dtype, {int64_t(values.size())}, values.data());
  llvm::Expected<std::string> bytes = writer.serialize();
  EXPECT_TRUE(bool(bytes));
  return openOk(bytes ? *bytes : craft("{}"), "conv.safetensors");
}

template <typename T>
std::vector<T> readAs(const SafeTensorsFile &file, size_t n) {
  std::vector<T> out(n);
  llvm::Error err = file.read("t", out.data(), n);
  EXPECT_FALSE(bool(err)) << llvm::toString(std::move(err));
  return out;
}

uint32_t bitsOf(float f) { return llvm::bit_cast<uint32_t>(f); }
uint64_t bitsOf(double d) { return llvm::bit_cast<uint64_t>(d); }

struct Pattern {
  uint16_t bits;
  float value; // exact
};

TEST(Conversion, BF16ToFloatAndDouble) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<Pattern> patterns = {
      {0x3F80, 1.0f},        {0xC020, -2.5f},       {0x3E20, 0.15625f},
      {0x4780, 65536.0f},    {0xBC00, -0.0078125f}, {0x0000, 0.0f},
      {0x8000, -0.0f},       {0x7F80, inf},         {0xFF80, -inf},
      {0x7F7F, 0x1.FEp127f}, // largest finite
      {0x0080, 0x1p-126f},   // smallest normal
      {0x0001, 0x1p-133f},   // smallest subnormal
      {0x4049, 3.140625f},
  };
  std::vector<uint16_t> raw;
  for (const Pattern &p : patterns)
    raw.push_back(p.bits);
  raw.push_back(0x7FC0); // NaN
  SafeTensorsFile file = fileOf(DType::BF16, raw);
  std::vector<float> f = readAs<float>(file, raw.size());
  std::vector<double> d = readAs<double>(file, raw.size());
  for (size_t i = 0; i < patterns.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << std::hex << patterns[i].bits);
    // Bitwise: -0.0 and 0.0 compare equal as floats.
    EXPECT_EQ(bitsOf(f[i]), bitsOf(patterns[i].value));
    EXPECT_EQ(bitsOf(d[i]), bitsOf(double(patterns[i].value)));
  }
  EXPECT_TRUE(std::isnan(f.back()));
  EXPECT_TRUE(std::isnan(d.back()));
}

TEST(Conversion, F16ToFloatAndDouble) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<Pattern> patterns = {
      {0x3C00, 1.0f},
      {0xC000, -2.0f},
      {0x7BFF, 65504.0f},        // largest finite
      {0x0400, 0x1p-14f},        // smallest normal
      {0x0001, 0x1p-24f},        // smallest subnormal
      {0x03FF, 1023 * 0x1p-24f}, // largest subnormal
      {0x8001, -0x1p-24f},       // negative subnormal
      {0x3555, 0.333251953125f},
      {0x3800, 0.5f},
      {0x0000, 0.0f},
      {0x8000, -0.0f},
      {0x7C00, inf},
      {0xFC00, -inf},
  };
  std::vector<uint16_t> raw;
  for (const Pattern &p : patterns)
    raw.push_back(p.bits);
  raw.push_back(0x7E00); // quiet NaN
  raw.push_back(0xFC01); // signalling NaN, negative
  SafeTensorsFile file = fileOf(DType::F16, raw);
  std::vector<float> f = readAs<float>(file, raw.size());
  std::vector<double> d = readAs<double>(file, raw.size());
  for (size_t i = 0; i < patterns.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << std::hex << patterns[i].bits);
    EXPECT_EQ(bitsOf(f[i]), bitsOf(patterns[i].value));
    EXPECT_EQ(bitsOf(d[i]), bitsOf(double(patterns[i].value)));
  }
  EXPECT_TRUE(std::isnan(f[patterns.size()]));
  EXPECT_TRUE(std::isnan(f[patterns.size() + 1]));
  EXPECT_TRUE(std::isnan(d[patterns.size() + 1]));
}

#ifdef __FLT16_MANT_DIG__
// Every one of the 65536 F16 patterns against the compiler's conversion.
TEST(Conversion, F16ExhaustiveAgainstFloat16) {
  std::vector<uint16_t> raw(65536);
  for (uint32_t i = 0; i < 65536; ++i)
    raw[i] = uint16_t(i);
  SafeTensorsFile file = fileOf(DType::F16, raw);
  std::vector<float> f = readAs<float>(file, raw.size());
  int mismatches = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    float want = float(llvm::bit_cast<_Float16>(uint16_t(i)));
    bool same =
        std::isnan(want) ? std::isnan(f[i]) : bitsOf(f[i]) == bitsOf(want);
    if (!same && ++mismatches <= 5)
      ADD_FAILURE() << "F16 0x" << std::hex << i << ": got " << f[i]
                    << ", want " << want;
  }
  EXPECT_EQ(mismatches, 0);
}
#endif

TEST(Conversion, F64NarrowsToNearestFloat) {
  std::vector<double> values = {0.1,    -1.0 / 3.0, 1e300,
                                -1e300, 1e-50,      16777217.0};
  SafeTensorsFile file = fileOf(DType::F64, values);
  std::vector<float> f = readAs<float>(file, values.size());
  EXPECT_EQ(f[0], 0.1f);
  EXPECT_EQ(f[1], float(-1.0 / 3.0));
  EXPECT_EQ(f[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(f[3], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(f[4], 0.0f);
  EXPECT_EQ(f[5], 16777216.0f); // ties to even
  std::vector<double> d = readAs<double>(file, values.size());
  EXPECT_EQ(d, values);
}

TEST(Conversion, F32ToDoubleIsExact) {
  std::vector<float> values = {0.1f, -3.0e38f, 1e-45f};
  SafeTensorsFile file = fileOf(DType::F32, values);
  std::vector<double> d = readAs<double>(file, values.size());
  for (size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(d[i], double(values[i]));
}

TEST(Conversion, IntegersWidenWithSign) {
  std::vector<int8_t> i8 = {-128, -1, 127};
  EXPECT_EQ(readAs<int64_t>(fileOf(DType::I8, i8), 3),
            (std::vector<int64_t>{-128, -1, 127}));
  std::vector<uint8_t> u8 = {0, 255};
  EXPECT_EQ(readAs<int64_t>(fileOf(DType::U8, u8), 2),
            (std::vector<int64_t>{0, 255}));
  std::vector<int16_t> i16 = {-32768, 32767};
  EXPECT_EQ(readAs<int64_t>(fileOf(DType::I16, i16), 2),
            (std::vector<int64_t>{-32768, 32767}));
  std::vector<int32_t> i32 = {INT32_MIN, INT32_MAX};
  EXPECT_EQ(readAs<int64_t>(fileOf(DType::I32, i32), 2),
            (std::vector<int64_t>{INT32_MIN, INT32_MAX}));
  std::vector<int64_t> i64 = {INT64_MIN, INT64_MAX};
  EXPECT_EQ(readAs<int64_t>(fileOf(DType::I64, i64), 2), i64);
}

TEST(Conversion, RefusesMixedUpKinds) {
  std::vector<int64_t> step = {7};
  SafeTensorsFile ints = fileOf(DType::I64, step);
  float f;
  double d;
  int64_t i;
  EXPECT_EQ(errorText(ints.read("t", &f, 1)),
            "conv.safetensors: tensor 't' is I64; it is not read as float");
  EXPECT_EQ(errorText(ints.read("t", &d, 1)),
            "conv.safetensors: tensor 't' is I64; it is not read as double");

  std::vector<float> w = {1.0f};
  SafeTensorsFile floats = fileOf(DType::F32, w);
  EXPECT_EQ(errorText(floats.read("t", &i, 1)),
            "conv.safetensors: tensor 't' is F32; it is not read as int64");

  std::vector<uint8_t> flag = {1};
  SafeTensorsFile bools = fileOf(DType::Bool, flag);
  EXPECT_EQ(errorText(bools.read("t", &f, 1)),
            "conv.safetensors: tensor 't' is BOOL; it is not read as float");
  EXPECT_EQ(errorText(bools.read("t", &i, 1)),
            "conv.safetensors: tensor 't' is BOOL; it is not read as int64");
  // The raw bytes are always available.
  EXPECT_EQ(bools.lookup("t")->data.size(), 1u);
}

TEST(Conversion, DTypeNamesAndSizes) {
  struct Row {
    DType type;
    const char *name;
    unsigned size;
  };
  Row rows[] = {{DType::F64, "F64", 8}, {DType::F32, "F32", 4},
                {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
                {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
                {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
                {DType::U8, "U8", 1},   {DType::Bool, "BOOL", 1}};
  for (const Row &r : rows) {
    EXPECT_EQ(dtypeName(r.type), r.name);
    EXPECT_EQ(dtypeSize(r.type), r.size);
    EXPECT_EQ(parseDType(r.name), r.type);
  }
  EXPECT_EQ(parseDType("bool"), std::nullopt);
  EXPECT_EQ(parseDType("U16"), std::nullopt);
}

} // namespace
