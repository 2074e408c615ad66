//===- RoundTripTest.cpp - Writer output read back, byte for byte ---------===//
//
// What the writer produces: every dtype, scalars and empty tensors, file
// order, metadata, the exact header bytes (fixed key order, padding) and
// determinism; and the mistakes add() records and write() reports.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "llvm/Support/Endian.h"

#include "gtest/gtest.h"

#include <cstring>

using namespace mllm::runtime;
using namespace mllm::testutil;

namespace {

std::string serializeOk(const SafeTensorsWriter &writer) {
  llvm::Expected<std::string> bytes = writer.serialize();
  if (!bytes) {
    ADD_FAILURE() << llvm::toString(bytes.takeError());
    return "";
  }
  return *bytes;
}

std::string serializeError(const SafeTensorsWriter &writer) {
  llvm::Expected<std::string> bytes = writer.serialize();
  if (bytes)
    return "";
  return llvm::toString(bytes.takeError());
}

llvm::StringRef bytesOf(const TensorInfo &t) {
  return llvm::StringRef(reinterpret_cast<const char *>(t.data.data()),
                         t.data.size());
}

template <typename T>
llvm::StringRef bytesOf(const std::vector<T> &v) {
  return llvm::StringRef(reinterpret_cast<const char *>(v.data()),
                         v.size() * sizeof(T));
}

struct Fixture {
  std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 3.0e38f, -1e-40f, 7.0f};
  std::vector<double> f64 = {1.0 / 3.0, -0.0, 1e300};
  std::vector<int64_t> step = {1234567890123};
  std::vector<int64_t> rng = {-1, 0, int64_t(1) << 62, INT64_MIN};
  std::vector<int32_t> i32 = {-7, 7};
  std::vector<uint16_t> bf16 = {0x3F80, 0xC020, 0x7F80, 0x0001};
  std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x7BFF};
  std::vector<int16_t> i16 = {-32768, 32767};
  std::vector<int8_t> i8 = {-128, 127, 0};
  std::vector<uint8_t> u8 = {0, 255};
  std::vector<uint8_t> flags = {1, 0, 1};
  float scalar = 2.5f;

  void addAll(SafeTensorsWriter &w) const {
    w.add("z.weight", {2, 3}, f32);
    w.add("a.bias", {3}, f64);
    w.add("step", {}, step);
    w.add("rng", {2, 2}, rng);
    w.add("i32", {2}, i32);
    w.add("bf16", DType::BF16, {2, 2}, bf16.data());
    w.add("f16", DType::F16, {3}, f16.data());
    w.add("i16", DType::I16, {2}, i16.data());
    w.add("i8", DType::I8, {3, 1}, i8.data());
    w.add("empty", {0, 4}, llvm::ArrayRef<float>());
    w.add("u8", DType::U8, {2}, u8.data());
    w.add("empty.i64", DType::I64, {5, 0}, nullptr);
    w.add("flags", DType::Bool, {3}, flags.data());
    w.add("scalar", {}, llvm::ArrayRef<float>(scalar));
    w.setMetadata("step", "1234567890123");
    w.setMetadata("plan_hash", "abc123");
    w.setMetadata("note", "quotes \" and \\ and \xc3\xa9");
  }
};

TEST(RoundTrip, EveryDtypeShapeAndMetadata) {
  Fixture fx;
  SafeTensorsWriter writer;
  fx.addAll(writer);
  EXPECT_EQ(writer.size(), 14u);
  ScratchDir dir;
  std::string path = dir.path("ckpt.safetensors");
  ASSERT_EQ(errorText(writer.write(path)), "");

  llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->fileName(), path);

  // File order is insertion order, not sorted.
  std::vector<llvm::StringRef> expected = {
      "z.weight", "a.bias", "step",  "rng", "i32",       "bf16",  "f16",
      "i16",      "i8",     "empty", "u8",  "empty.i64", "flags", "scalar"};
  EXPECT_EQ(file->names(), expected);

  struct Want {
    const char *name;
    DType dtype;
    std::vector<int64_t> shape;
    llvm::StringRef bytes;
  };
  float scalar = fx.scalar;
  std::vector<Want> wants = {
      {"z.weight", DType::F32, {2, 3}, bytesOf(fx.f32)},
      {"a.bias", DType::F64, {3}, bytesOf(fx.f64)},
      {"step", DType::I64, {}, bytesOf(fx.step)},
      {"rng", DType::I64, {2, 2}, bytesOf(fx.rng)},
      {"i32", DType::I32, {2}, bytesOf(fx.i32)},
      {"bf16", DType::BF16, {2, 2}, bytesOf(fx.bf16)},
      {"f16", DType::F16, {3}, bytesOf(fx.f16)},
      {"i16", DType::I16, {2}, bytesOf(fx.i16)},
      {"i8", DType::I8, {3, 1}, bytesOf(fx.i8)},
      {"empty", DType::F32, {0, 4}, ""},
      {"u8", DType::U8, {2}, bytesOf(fx.u8)},
      {"empty.i64", DType::I64, {5, 0}, ""},
      {"flags", DType::Bool, {3}, bytesOf(fx.flags)},
      {"scalar", DType::F32, {}, llvm::StringRef((const char *)&scalar, 4)},
  };
  for (const Want &want : wants) {
    SCOPED_TRACE(want.name);
    const TensorInfo *t = file->lookup(want.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, want.dtype);
    EXPECT_EQ(std::vector<int64_t>(t->shape.begin(), t->shape.end()),
              want.shape);
    EXPECT_EQ(bytesOf(*t), want.bytes);
  }
  EXPECT_EQ(file->lookup("scalar")->numElements(), 1u);
  EXPECT_EQ(file->lookup("empty")->numElements(), 0u);

  std::map<std::string, std::string> meta = {
      {"note", "quotes \" and \\ and \xc3\xa9"},
      {"plan_hash", "abc123"},
      {"step", "1234567890123"}};
  EXPECT_EQ(file->metadata(), meta);
  EXPECT_EQ(file->metadata("plan_hash"), llvm::StringRef("abc123"));
  EXPECT_EQ(file->metadata("absent"), std::nullopt);

  // Typed reads of what was written.
  llvm::Expected<std::vector<float>> w = file->readAll<float>("z.weight");
  ASSERT_TRUE(bool(w));
  EXPECT_EQ(*w, fx.f32);
  llvm::Expected<std::vector<double>> b = file->readAll<double>("a.bias");
  ASSERT_TRUE(bool(b));
  EXPECT_EQ(*b, fx.f64);
  llvm::Expected<std::vector<int64_t>> r = file->readAll<int64_t>("rng");
  ASSERT_TRUE(bool(r));
  EXPECT_EQ(*r, fx.rng);
  llvm::Expected<std::vector<float>> e = file->readAll<float>("empty");
  ASSERT_TRUE(bool(e));
  EXPECT_TRUE(e->empty());
  llvm::Expected<std::vector<float>> s = file->readAll<float>("scalar");
  ASSERT_TRUE(bool(s));
  EXPECT_EQ(*s, std::vector<float>{2.5f});

  // Data is contiguous in insertion order.
  uint64_t next = 0;
  for (const TensorInfo &t : file->tensors()) {
    EXPECT_EQ(t.begin, next) << t.name;
    next = t.end;
  }
}

// The exact bytes: a fixed key order (metadata first, sorted; tensors in
// insertion order; dtype, shape, data_offsets) and spaces up to a multiple
// of 8. Readers and tests can compare files byte for byte.
TEST(RoundTrip, ExactHeaderBytes) {
  SafeTensorsWriter writer;
  std::vector<float> x = {1.0f, 2.0f};
  std::vector<int64_t> n = {3};
  writer.add("x", {2}, x);
  writer.add("n", {}, n);
  writer.setMetadata("b", "2");
  writer.setMetadata("a", "1");
  std::string json = "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\"},"
                     "\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[0,8]},"
                     "\"n\":{\"dtype\":\"I64\",\"shape\":[],"
                     "\"data_offsets\":[8,16]}}";
  std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  ASSERT_EQ(padded.size() % 8, 0u);
  std::string data = bytesOf(x).str() + bytesOf(n).str();
  EXPECT_EQ(serializeOk(writer), craft(padded, data));
}

TEST(RoundTrip, NoMetadataMeansNoMetadataKey) {
  SafeTensorsWriter writer;
  std::string bytes = serializeOk(writer);
  EXPECT_EQ(bytes, craft("{}      "));
  SafeTensorsFile file = openOk(bytes);
  EXPECT_EQ(file.size(), 0u);
  EXPECT_TRUE(file.metadata().empty());
}

TEST(RoundTrip, DeterministicAcrossWritersAndFiles) {
  Fixture fx;
  SafeTensorsWriter a, b;
  fx.addAll(a);
  fx.addAll(b);
  std::string bytesA = serializeOk(a);
  EXPECT_EQ(bytesA, serializeOk(b));
  EXPECT_EQ(bytesA, serializeOk(a)); // serialize twice: same bytes

  ScratchDir dir;
  ASSERT_EQ(errorText(a.write(dir.path("one.safetensors"))), "");
  ASSERT_EQ(errorText(b.write(dir.path("two.safetensors"))), "");
  EXPECT_EQ(slurp(dir.path("one.safetensors")), bytesA);
  EXPECT_EQ(slurp(dir.path("two.safetensors")), bytesA);
  // Header length is a multiple of 8 and the padding is spaces.
  uint64_t n = llvm::support::endian::read64le(bytesA.data());
  EXPECT_EQ(n % 8, 0u);
  llvm::StringRef header = llvm::StringRef(bytesA).substr(8, n);
  EXPECT_EQ(header.rtrim(' ').back(), '}');
}

// Sources are called in chunks that tile the tensor exactly.
TEST(RoundTrip, SourceChunksCoverTheTensor) {
  uint64_t elements = SafeTensorsWriter::chunkBytes / 4 * 2 + 3;
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  SafeTensorsWriter writer;
  writer.add("big", DType::F32, {int64_t(elements)},
             [&](uint64_t offset, llvm::MutableArrayRef<uint8_t> out) {
               calls.push_back({offset, out.size()});
               for (size_t i = 0; i < out.size(); ++i)
                 out[i] = uint8_t((offset + i) * 7);
               return llvm::Error::success();
             });
  std::string bytes = serializeOk(writer);
  ASSERT_EQ(calls.size(), 3u);
  uint64_t next = 0;
  for (auto [offset, size] : calls) {
    EXPECT_EQ(offset, next);
    EXPECT_LE(size, SafeTensorsWriter::chunkBytes);
    next += size;
  }
  EXPECT_EQ(next, elements * 4);
  SafeTensorsFile file = openOk(bytes);
  const TensorInfo *t = file.lookup("big");
  ASSERT_NE(t, nullptr);
  bool same = true;
  for (uint64_t i = 0; i < t->data.size(); ++i)
    same &= t->data[i] == uint8_t(i * 7);
  EXPECT_TRUE(same);
}

TEST(Writer, RecordsTheFirstMistake) {
  std::vector<float> two = {1, 2};
  struct Case {
    const char *what;
    std::function<void(SafeTensorsWriter &)> add;
    const char *message;
  };
  std::vector<Case> cases = {
      {"duplicate",
       [&](SafeTensorsWriter &w) {
         w.add("a", {2}, two);
         w.add("a", {2}, two);
       },
       "<serialize>: tensor 'a': added twice"},
      {"count", [&](SafeTensorsWriter &w) { w.add("a", {3}, two); },
       "<serialize>: tensor 'a': 2 elements given for a shape of 3"},
      {"negative", [&](SafeTensorsWriter &w) { w.add("a", {2, -1}, two); },
       "<serialize>: tensor 'a': shape[1] is negative (-1)"},
      {"empty name", [&](SafeTensorsWriter &w) { w.add("", {2}, two); },
       "<serialize>: tensor '': the name is empty"},
      {"reserved",
       [&](SafeTensorsWriter &w) { w.add("__metadata__", {2}, two); },
       "<serialize>: tensor '__metadata__': the name is reserved for the "
       "metadata"},
      {"utf8", [&](SafeTensorsWriter &w) { w.add("a\xff", {2}, two); },
       "<serialize>: tensor 'a\xff': the name is not valid UTF-8"},
      {"null data",
       [&](SafeTensorsWriter &w) {
         w.add("a", DType::F32, {2}, static_cast<const void *>(nullptr));
       },
       "<serialize>: tensor 'a': no data"},
      {"element overflow",
       [&](SafeTensorsWriter &w) {
         w.add("a", DType::U8, {int64_t(1) << 62, 8}, two.data());
       },
       "<serialize>: tensor 'a': the element count overflows 64 bits"},
      {"byte overflow",
       [&](SafeTensorsWriter &w) {
         w.add("a", DType::F32, {int64_t(1) << 61, 4}, two.data());
       },
       "<serialize>: tensor 'a': the byte size overflows 64 bits"},
      {"first wins",
       [&](SafeTensorsWriter &w) {
         w.add("a", {9}, two);
         w.add("b", {-1}, two);
       },
       "<serialize>: tensor 'a': 2 elements given for a shape of 9"},
      {"metadata utf8",
       [&](SafeTensorsWriter &w) { w.setMetadata("k", "\xc3"); },
       "<serialize>: metadata 'k': not valid UTF-8"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    SafeTensorsWriter writer;
    c.add(writer);
    EXPECT_EQ(serializeError(writer), c.message);
    // write() refuses before creating anything.
    ScratchDir dir;
    std::string path = dir.path("x.safetensors");
    std::string err = errorText(writer.write(path));
    EXPECT_EQ(err, path + llvm::StringRef(c.message).drop_front(11).str());
    EXPECT_TRUE(dir.list().empty());
  }
}

TEST(Writer, MetadataIsReplacedNotDuplicated) {
  SafeTensorsWriter writer;
  writer.setMetadata("step", "1");
  writer.setMetadata("step", "2");
  SafeTensorsFile file = openOk(serializeOk(writer));
  EXPECT_EQ(file.metadata().size(), 1u);
  EXPECT_EQ(file.metadata("step"), llvm::StringRef("2"));
}

} // namespace
