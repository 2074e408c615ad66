//===- ValidationTest.cpp - The reader against hostile files --------------===//
//
// Every check open() makes, each on a hand-crafted file that fails exactly
// that check, compared with the full message (file name included). A
// message regression or a check that stops firing fails its own test.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

using namespace mllm::runtime;
using namespace mllm::testutil;

namespace {

struct Hostile {
  const char *name;
  std::string bytes;
  const char *message; // after "ckpt.safetensors: "
};

// Test names (and ctest's listing) show the case name, not its bytes.
void PrintTo(const Hostile &h, std::ostream *os) { *os << h.name; }

/// A valid entry body for F32 [2] at [b, b + 8].
std::string f32x2(int b) {
  return "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" +
         std::to_string(b) + "," + std::to_string(b + 8) + "]}";
}

std::vector<Hostile> hostileFiles() {
  std::string eight(8, 'x');
  return {
      {"TooShort", "abc",
       "file is 3 bytes, too short for the 8-byte header length"},
      {"Empty", "", "file is 0 bytes, too short for the 8-byte header length"},
      {"HeaderOverLimit", craft("{}", "", 100'000'001),
       "header length 100000001 exceeds the 100000000-byte limit"},
      {"HeaderHuge", craft("{}", "", ~uint64_t(0)),
       "header length 18446744073709551615 exceeds the 100000000-byte limit"},
      {"HeaderPastEnd", craft("{}", "", 100'000'000),
       "header length 100000000 exceeds the 2 bytes after the length field"},
      {"HeaderOneTooLong", craft("{}", "", 3),
       "header length 3 exceeds the 2 bytes after the length field"},
      {"NotSafeTensors", "version: 3\njob: {}\n",
       "is not a safetensors file: it does not start with an 8-byte header "
       "length and a JSON header"},
      {"InvalidUtf8", craft("{\"a\xff\":1}"),
       "header is not valid UTF-8 (byte 3 of the header)"},
      {"NotObject", craft("[1,2]"),
       "header is not a JSON object (it must start with '{')"},
      {"EmptyHeader", craft(""),
       "header is not a JSON object (it must start with '{')"},
      {"LeadingSpace", craft(" {}"),
       "header is not a JSON object (it must start with '{')"},
      {"TooDeep",
       craft("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"),
       "header nests deeper than 64 levels"},
      {"VeryDeep", craft("{\"a\":" + std::string(1'000'000, '[') + "}"),
       "header nests deeper than 64 levels"},
      {"InvalidJson", craft("{\"a\":}"),
       "header is not valid JSON: [1:6, byte=6]: Invalid JSON value"},
      {"TextAfterObject", craft("{} {}"),
       "header is not valid JSON: [1:3, byte=3]: Text after end of document"},
      {"DuplicateTensor",
       craft("{\"a\":" + f32x2(0) + ",\"a\":" + f32x2(0) + "}", eight),
       "header has key 'a' twice"},
      {"DuplicateField",
       craft("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"I8\",\"shape\":[2],"
             "\"data_offsets\":[0,8]}}",
             eight),
       "tensor 'a' has key 'dtype' twice"},
      {"DuplicateMetadataKey",
       craft("{\"__metadata__\":{\"step\":\"1\",\"step\":\"2\"}}"),
       "__metadata__ has key 'step' twice"},
      {"DuplicateByEscape",
       craft("{\"a\":" + f32x2(0) + ",\"\\u0061\":" + f32x2(0) + "}", eight),
       "header has key 'a' twice"},
      {"EntryNotObject", craft("{\"a\":5}"),
       "tensor 'a': entry is not a JSON object"},
      {"EmptyName", craft("{\"\":" + f32x2(0) + "}", eight),
       "a tensor has an empty name"},
      {"UnknownField",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
             "\"zz\":1,\"offset\":0}}",
             eight),
       "tensor 'a': unknown field 'offset'"},
      {"MissingDtype", craft("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}"),
       "tensor 'a': missing \"dtype\""},
      {"DtypeNotString",
       craft("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}"),
       "tensor 'a': dtype is not a string"},
      {"UnknownDtype",
       craft("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,"
             "2]}}",
             "xx"),
       "tensor 'a': unknown dtype 'F8_E4M3' (supported: F64, F32, F16, BF16, "
       "I64, I32, I16, I8, U8, BOOL)"},
      {"LowercaseDtype",
       craft("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             eight),
       "tensor 'a': unknown dtype 'f32' (supported: F64, F32, F16, BF16, I64, "
       "I32, I16, I8, U8, BOOL)"},
      {"ControlCharInName",
       craft("{\"a\\u0001'\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,"
             "0]}}"),
       "tensor 'a\\x01\\'': unknown dtype 'X' (supported: F64, F32, F16, BF16, "
       "I64, I32, I16, I8, U8, BOOL)"},
      {"MissingShape",
       craft("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}"),
       "tensor 'a': missing \"shape\""},
      {"ShapeNotArray",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}"),
       "tensor 'a': shape is not an array"},
      {"NegativeDim",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,"
             "8]}}"),
       "tensor 'a': shape[1] is not an integer in [0, 2^63)"},
      {"FractionalDim",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,"
             "8]}}"),
       "tensor 'a': shape[0] is not an integer in [0, 2^63)"},
      {"DimTooBig",
       craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],"
             "\"data_offsets\":[0,8]}}"),
       "tensor 'a': shape[0] is not an integer in [0, 2^63)"},
      {"MissingOffsets", craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}"),
       "tensor 'a': missing \"data_offsets\""},
      {"OffsetsNotPair",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}"),
       "tensor 'a': data_offsets is not a [begin, end] pair"},
      {"OffsetNegative",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}"
             "}"),
       "tensor 'a': data_offsets[1] is not an integer in [0, 2^63)"},
      {"OffsetString",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\","
             "8]}}"),
       "tensor 'a': data_offsets[0] is not an integer in [0, 2^63)"},
      {"BeginAfterEnd",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
             eight),
       "tensor 'a': data_offsets [8, 0] end before they begin"},
      {"EndPastData",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             "1234567"),
       "tensor 'a': data_offsets [0, 8] reach past the 7 bytes of data"},
      {"HugeEnd",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
             "9223372036854775807]}}"),
       "tensor 'a': data_offsets [0, 9223372036854775807] reach past the 0 "
       "bytes of data"},
      {"SizeMismatch",
       craft("{\"llm.blocks.0.wq\":{\"dtype\":\"F32\",\"shape\":[2,4],"
             "\"data_offsets\":[0,12]}}",
             "123456789012"),
       "tensor 'llm.blocks.0.wq': data_offsets [0, 12] hold 12 bytes but "
       "shape [2, 4] x F32 needs 32"},
      // 2^62 * 4 elements * 4 bytes wraps to 0 in 64 bits: without the
      // overflow check this "matches" data_offsets [0, 0].
      {"ByteSizeOverflowWrapsToZero",
       craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
             "\"data_offsets\":[0,0]}}"),
       "tensor 'a': shape [4611686018427387904, 4] x F32 needs more than "
       "2^64 bytes"},
      {"ScalarNeedsOneElement",
       craft("{\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,0]}}"),
       "tensor 'a': data_offsets [0, 0] hold 0 bytes but shape [] x I64 "
       "needs 8"},
      {"Overlap",
       craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[8,24]}}",
             std::string(24, 'x')),
       "tensors 'a' [0, 16] and 'b' [8, 24] overlap"},
      {"SameRange",
       craft("{\"b\":" + f32x2(0) + ",\"a\":" + f32x2(0) + "}", eight),
       "tensors 'b' [0, 8] and 'a' [0, 8] overlap"},
      {"EmptyInsideAnother",
       craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
             "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}",
             std::string(16, 'x')),
       "tensors 'a' [0, 16] and 'e' [4, 4] overlap"},
      {"Gap",
       craft("{\"a\":" + f32x2(0) + ",\"b\":" + f32x2(16) + "}",
             std::string(24, 'x')),
       "data bytes [8, 16) belong to no tensor"},
      {"GapAtStart", craft("{\"a\":" + f32x2(8) + "}", std::string(16, 'x')),
       "data bytes [0, 8) belong to no tensor"},
      {"TrailingBytes", craft("{\"a\":" + f32x2(0) + "}", eight + "!"),
       "data bytes [8, 9) belong to no tensor (trailing bytes)"},
      {"DataWithoutTensors", craft("{}", "x"),
       "data bytes [0, 1) belong to no tensor (trailing bytes)"},
      {"MetadataNotObject", craft("{\"__metadata__\":[\"a\"]}"),
       "__metadata__ is not a JSON object"},
      {"MetadataValueNotString",
       craft("{\"__metadata__\":{\"b\":\"ok\",\"step\":7}}"),
       "__metadata__ 'step' is not a string"},
      {"MetadataValueNull", craft("{\"__metadata__\":{\"a\":null}}"),
       "__metadata__ 'a' is not a string"},
  };
}

class HostileTest : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileTest, IsRejectedWithMessage) {
  const Hostile &h = GetParam();
  EXPECT_EQ(openError(h.bytes), std::string("ckpt.safetensors: ") + h.message);
}

INSTANTIATE_TEST_SUITE_P(Reader, HostileTest,
                         ::testing::ValuesIn(hostileFiles()),
                         [](const ::testing::TestParamInfo<Hostile> &info) {
                           return std::string(info.param.name);
                         });

// The hostile cases above differ from valid files in one check each; these
// valid neighbours make sure the checks do not also reject good files.
TEST(Reader, AcceptsEdgeCases) {
  // Exactly at the limits: empty header object, no data.
  EXPECT_EQ(openError(craft("{}")), "");
  // Whitespace and padding after the object, keys in any order, metadata
  // anywhere, integer literals with spaces.
  EXPECT_EQ(openError(craft("{ \"b\" : { \"data_offsets\" : [ 0 , 8 ], "
                            "\"shape\" : [ 2 ], \"dtype\" : \"F32\" }, "
                            "\"__metadata__\": {}, \"a\":{\"dtype\":\"BOOL\","
                            "\"shape\":[0],\"data_offsets\":[8,8]}}   \n\t",
                            std::string(8, 'x'))),
            "");
  // Empty tensors may share their offset with a neighbour's boundary.
  EXPECT_EQ(openError(craft("{\"e1\":{\"dtype\":\"F32\",\"shape\":[0,3],"
                            "\"data_offsets\":[0,0]},\"e2\":{\"dtype\":\"I64\","
                            "\"shape\":[5,0],\"data_offsets\":[0,0]}}")),
            "");
  // Names may be any UTF-8, including escapes.
  EXPECT_EQ(openError(craft("{\"\\u00e9t\\u00e9\":{\"dtype\":\"U8\",\"shape\":"
                            "[],\"data_offsets\":[0,1]}}",
                            "x")),
            "");
}

TEST(Reader, MissingFileNamesThePath) {
  llvm::Expected<SafeTensorsFile> file =
      SafeTensorsFile::open("/nonexistent/dir/ckpt.safetensors");
  ASSERT_FALSE(file);
  EXPECT_EQ(llvm::toString(file.takeError()),
            "/nonexistent/dir/ckpt.safetensors: cannot read: No such file or "
            "directory");
}

TEST(Reader, RefusesWhatIsNotARegularFile) {
  ScratchDir dir;
  llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(dir.str());
  ASSERT_FALSE(file);
  EXPECT_EQ(llvm::toString(file.takeError()),
            dir.str().str() + ": not a regular file");
  llvm::Expected<SafeTensorsFile> zero = SafeTensorsFile::open("/dev/zero");
  ASSERT_FALSE(zero);
  EXPECT_EQ(llvm::toString(zero.takeError()), "/dev/zero: not a regular file");
}

// Any strict prefix of a valid file (what an interrupted copy or write
// leaves) and any file with extra bytes is rejected: the coverage rule
// leaves no length but the right one.
TEST(Reader, EveryTruncationAndExtensionIsRejected) {
  SafeTensorsWriter writer;
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<int64_t> step = {42};
  writer.add("w", {2, 3}, w);
  writer.add("empty", {0}, llvm::ArrayRef<float>());
  writer.add("step", {}, step);
  writer.setMetadata("k", "v");
  llvm::Expected<std::string> bytes = writer.serialize();
  ASSERT_TRUE(bool(bytes)) << llvm::toString(bytes.takeError());
  ASSERT_EQ(openError(*bytes), "");
  for (size_t n = 0; n < bytes->size(); ++n)
    EXPECT_NE(openError(llvm::StringRef(*bytes).take_front(n)), "")
        << "prefix of " << n << " bytes was accepted";
  EXPECT_NE(openError(*bytes + '\0'), "");
  EXPECT_NE(openError(*bytes + "12345678"), "");
}

TEST(Reader, MissingTensorAndWrongCounts) {
  SafeTensorsWriter writer;
  std::vector<float> w = {1, 2, 3};
  writer.add("w", {3}, w);
  llvm::Expected<std::string> bytes = writer.serialize();
  ASSERT_TRUE(bool(bytes));
  SafeTensorsFile file = openOk(*bytes, "m.safetensors");

  EXPECT_EQ(file.lookup("nope"), nullptr);
  llvm::Expected<const TensorInfo &> missing = file.tensor("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(llvm::toString(missing.takeError()),
            "m.safetensors: no tensor 'nope'");

  float out[4];
  EXPECT_EQ(errorText(file.read("nope", out, 3)),
            "m.safetensors: no tensor 'nope'");
  EXPECT_EQ(errorText(file.read("w", out, 4)),
            "m.safetensors: tensor 'w' has 3 elements; the destination has 4");
  EXPECT_EQ(errorText(file.read("w", out, 2)),
            "m.safetensors: tensor 'w' has 3 elements; the destination has 2");
  EXPECT_EQ(errorText(file.read("w", out, 3)), "");
}

} // namespace
