//===- SafeTensors.cpp - safetensors dtypes and validating reader ---------===//
//
// The reader validates a whole file before exposing a byte of it. The order
// of the checks matters: sizes before reading the header, UTF-8 and nesting
// depth before handing the text to llvm::json (which recurses), JSON before
// the structural scan (which relies on valid JSON), entries before the
// coverage check (which relies on valid offsets).
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/SafeTensors.h"
#include "mllm/runtime/JsonDepth.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <tuple>

using namespace mllm;
using namespace mllm::runtime;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

// Tensor data is copied with memcpy, and the writer takes raw host-order
// buffers: both are only correct on a little-endian host.
static_assert(llvm::endianness::native == llvm::endianness::little,
              "safetensors data is little-endian; a big-endian host needs "
              "byte swapping in the reader and the writer");

namespace {
struct DTypeRow {
  DType type;
  const char *name;
  unsigned size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1}};
} // namespace

StringRef mllm::runtime::dtypeName(DType type) {
  for (const DTypeRow &row : kDTypes)
    if (row.type == type)
      return row.name;
  return "?";
}

std::optional<DType> mllm::runtime::parseDType(StringRef name) {
  for (const DTypeRow &row : kDTypes)
    if (name == row.name)
      return row.type;
  return std::nullopt;
}

unsigned mllm::runtime::dtypeSize(DType type) {
  for (const DTypeRow &row : kDTypes)
    if (row.type == type)
      return row.size;
  return 0;
}

uint64_t TensorInfo::numElements() const {
  // Validated by open(): the product times the dtype size fits in 64 bits.
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= uint64_t(d);
  return n;
}

//===----------------------------------------------------------------------===//
// Messages
//===----------------------------------------------------------------------===//

/// A name from a hostile file, quoted for a message: control characters are
/// escaped (they could rewrite a terminal) and long names are cut.
static std::string quoted(StringRef name) {
  constexpr size_t maxShown = 200;
  bool cut = name.size() > maxShown;
  if (cut) {
    size_t n = maxShown;
    // Do not split a UTF-8 sequence: back off over continuation bytes.
    while (n > 0 && (uint8_t(name[n]) & 0xC0) == 0x80)
      --n;
    name = name.take_front(n);
  }
  std::string out = "'";
  for (char c : name) {
    uint8_t u = uint8_t(c);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F) {
      out += llvm::formatv("\\x{0:x-2}", unsigned(u)).str();
    } else {
      out += c;
    }
  }
  out += cut ? "'..." : "'";
  return out;
}

static std::string shapeString(ArrayRef<int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

static std::string rangeString(uint64_t begin, uint64_t end) {
  return llvm::formatv("[{0}, {1}]", begin, end).str();
}

static Error fail(StringRef file, const Twine &what) {
  return llvm::make_error<llvm::StringError>(file + ": " + what,
                                             llvm::inconvertibleErrorCode());
}

//===----------------------------------------------------------------------===//
// Structural scans of the header text
//===----------------------------------------------------------------------===//

/// A JSON string token (quotes included) decoded to its value.
static std::string decodeKey(StringRef token) {
  StringRef inner = token.drop_front().drop_back();
  if (!inner.contains('\\'))
    return inner.str();
  // Escapes: let llvm::json decode them (the token is valid JSON).
  Expected<llvm::json::Value> v = llvm::json::parse(token);
  if (!v) {
    llvm::consumeError(v.takeError());
    return inner.str();
  }
  return v->getAsString().value_or(inner).str();
}

/// Walks a header that llvm::json already accepted and returns its top-level
/// keys in file order. llvm::json::Object is unordered and keeps the last of
/// duplicate keys silently, so both the order and duplicate keys (in the top
/// level and in each entry) are found here. A duplicate is an error: readers
/// disagree on which copy wins, and that is how a file hides a tensor.
static Expected<std::vector<std::string>> scanKeys(StringRef file,
                                                   StringRef text) {
  struct Frame {
    bool isObject;
    llvm::StringSet<> keys;
    std::string owner; // for messages: the key this object is the value of
  };
  std::vector<Frame> stack;
  std::vector<std::string> topKeys;
  std::string lastKey;
  char prev = 0; // previous structural character
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      size_t j = jsonStringEnd(text, i);
      StringRef token = text.slice(i, j + 1);
      i = j;
      bool isKey = !stack.empty() && stack.back().isObject &&
                   (prev == '{' || prev == ',');
      prev = '"';
      if (!isKey)
        continue;
      std::string key = decodeKey(token);
      Frame &top = stack.back();
      if (!top.keys.insert(key).second) {
        if (stack.size() == 1)
          return fail(file, "header has key " + quoted(key) + " twice");
        if (stack.size() == 2) {
          std::string owner = top.owner == "__metadata__"
                                  ? top.owner
                                  : "tensor " + quoted(top.owner);
          return fail(file, owner + " has key " + quoted(key) + " twice");
        }
        // Deeper objects are never valid in the format; later checks say so.
      }
      if (stack.size() == 1)
        topKeys.push_back(key);
      lastKey = std::move(key);
    } else if (c == '{' || c == '[') {
      stack.push_back({c == '{', {}, stack.size() == 1 ? lastKey : ""});
      prev = c;
    } else if (c == '}' || c == ']') {
      if (!stack.empty())
        stack.pop_back();
      prev = c;
    } else if (c == ',' || c == ':') {
      prev = c;
    }
  }
  return std::move(topKeys);
}

//===----------------------------------------------------------------------===//
// Entries
//===----------------------------------------------------------------------===//

/// A JSON integer in [0, INT64_MAX]. Only integer literals count: "2.0" or
/// "1e3" are refused (getAsUINT64 does not convert doubles), as in the
/// reference implementation.
static std::optional<uint64_t> nonNegativeInt(const llvm::json::Value &v) {
  std::optional<uint64_t> u = v.getAsUINT64();
  if (!u || *u > uint64_t(INT64_MAX))
    return std::nullopt;
  return u;
}

static Error parseEntry(StringRef file, StringRef name,
                        const llvm::json::Value &value, uint64_t dataSize,
                        TensorInfo &out) {
  // The writer refuses empty names too, so whatever we read we can write.
  if (name.empty())
    return fail(file, "a tensor has an empty name");
  std::string who = "tensor " + quoted(name);
  const llvm::json::Object *entry = value.getAsObject();
  if (!entry)
    return fail(file, who + ": entry is not a JSON object");
  std::vector<std::string> unknown;
  for (const auto &kv : *entry) {
    StringRef key = kv.first;
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      unknown.push_back(key.str());
  }
  if (!unknown.empty()) {
    // llvm::json::Object is unordered: name the smallest, deterministically.
    return fail(file,
                who + ": unknown field " +
                    quoted(*std::min_element(unknown.begin(), unknown.end())));
  }

  out.name = name.str();
  const llvm::json::Value *dtype = entry->get("dtype");
  if (!dtype)
    return fail(file, who + ": missing \"dtype\"");
  std::optional<StringRef> dtypeStr = dtype->getAsString();
  if (!dtypeStr)
    return fail(file, who + ": dtype is not a string");
  std::optional<DType> type = parseDType(*dtypeStr);
  if (!type)
    return fail(file, who + ": unknown dtype " + quoted(*dtypeStr) +
                          " (supported: F64, F32, F16, BF16, I64, I32, I16, "
                          "I8, U8, BOOL)");
  out.dtype = *type;

  const llvm::json::Value *shape = entry->get("shape");
  if (!shape)
    return fail(file, who + ": missing \"shape\"");
  const llvm::json::Array *dims = shape->getAsArray();
  if (!dims)
    return fail(file, who + ": shape is not an array");
  for (size_t i = 0; i < dims->size(); ++i) {
    std::optional<uint64_t> d = nonNegativeInt((*dims)[i]);
    if (!d)
      return fail(file, who + ": shape[" + Twine(i) +
                            "] is not an integer in [0, 2^63)");
    out.shape.push_back(int64_t(*d));
  }

  const llvm::json::Value *offsets = entry->get("data_offsets");
  if (!offsets)
    return fail(file, who + ": missing \"data_offsets\"");
  const llvm::json::Array *pair = offsets->getAsArray();
  if (!pair || pair->size() != 2)
    return fail(file, who + ": data_offsets is not a [begin, end] pair");
  std::optional<uint64_t> begin = nonNegativeInt((*pair)[0]);
  std::optional<uint64_t> end = nonNegativeInt((*pair)[1]);
  if (!begin || !end)
    return fail(file, who + ": data_offsets[" + Twine(begin ? 1 : 0) +
                          "] is not an integer in [0, 2^63)");
  out.begin = *begin;
  out.end = *end;
  std::string range = rangeString(out.begin, out.end);
  if (out.begin > out.end)
    return fail(file,
                who + ": data_offsets " + range + " end before they begin");
  if (out.end > dataSize)
    return fail(file, who + ": data_offsets " + range + " reach past the " +
                          Twine(dataSize) + " bytes of data");

  // Element count times element size, refusing 64-bit overflow: a shape
  // like [2^62, 8] must not wrap around to a small, matching size.
  std::string shapeDesc =
      shapeString(out.shape) + " x " + dtypeName(out.dtype).str();
  uint64_t needed = dtypeSize(out.dtype);
  for (int64_t d : out.shape) {
    bool overflow = false;
    needed = llvm::SaturatingMultiply(needed, uint64_t(d), &overflow);
    if (overflow)
      return fail(file,
                  who + ": shape " + shapeDesc + " needs more than 2^64 bytes");
  }
  if (needed != out.numBytes())
    return fail(file, who + ": data_offsets " + range + " hold " +
                          Twine(out.numBytes()) + " bytes but shape " +
                          shapeDesc + " needs " + Twine(needed));
  return Error::success();
}

/// Every data byte belongs to exactly one tensor: no overlaps (two names
/// sharing bytes), no gaps and no trailing bytes (the reference rule that
/// keeps a file from carrying hidden payloads; it also makes every strict
/// prefix of a valid file invalid).
static Error checkCoverage(StringRef file, ArrayRef<TensorInfo> entries,
                           uint64_t dataSize) {
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  // Ties (empty tensors at one offset) keep file order, so the message
  // about the first fault is deterministic.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::make_tuple(entries[a].begin, entries[a].end, a) <
           std::make_tuple(entries[b].begin, entries[b].end, b);
  });
  uint64_t cursor = 0;
  const TensorInfo *last = nullptr;
  for (size_t i : order) {
    const TensorInfo &t = entries[i];
    if (t.begin < cursor)
      return fail(file, "tensors " + quoted(last->name) + " " +
                            rangeString(last->begin, last->end) + " and " +
                            quoted(t.name) + " " + rangeString(t.begin, t.end) +
                            " overlap");
    if (t.begin > cursor)
      return fail(file, "data bytes [" + Twine(cursor) + ", " + Twine(t.begin) +
                            ") belong to no tensor");
    cursor = t.end;
    last = &t;
  }
  if (cursor != dataSize)
    return fail(file, "data bytes [" + Twine(cursor) + ", " + Twine(dataSize) +
                          ") belong to no tensor (trailing bytes)");
  return Error::success();
}

//===----------------------------------------------------------------------===//
// SafeTensorsFile
//===----------------------------------------------------------------------===//

Expected<SafeTensorsFile> SafeTensorsFile::open(StringRef path) {
  // A directory, FIFO or device (`--init /dev/zero`) would be read until
  // EOF into memory; only regular files (or links to them) are checkpoints.
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(path, status))
    return fail(path, "cannot read: " + ec.message());
  if (!llvm::sys::fs::is_regular_file(status))
    return fail(path, "not a regular file");
  // Not null-terminated, so large files are mapped rather than copied.
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fail(path, "cannot read: " + buffer.getError().message());
  return openBuffer(std::move(*buffer));
}

Expected<SafeTensorsFile>
SafeTensorsFile::openBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer) {
  StringRef file = buffer->getBufferIdentifier();
  StringRef bytes = buffer->getBuffer();
  if (bytes.size() < 8)
    return fail(file, "file is " + Twine(bytes.size()) +
                          " bytes, too short for the 8-byte header length");
  uint64_t headerLen = llvm::support::endian::read64le(bytes.data());
  // Text, YAML, an image: eight bytes of it make an absurd length, and
  // what follows is no JSON header. Say what the file is not.
  if ((headerLen > SafeTensorsLimits::maxHeaderBytes ||
       headerLen > bytes.size() - 8) &&
      (bytes.size() == 8 || bytes[8] != '{'))
    return fail(file, "is not a safetensors file: it does not start with an "
                      "8-byte header length and a JSON header");
  if (headerLen > SafeTensorsLimits::maxHeaderBytes)
    return fail(file, "header length " + Twine(headerLen) + " exceeds the " +
                          Twine(SafeTensorsLimits::maxHeaderBytes) +
                          "-byte limit");
  if (headerLen > bytes.size() - 8)
    return fail(file, "header length " + Twine(headerLen) + " exceeds the " +
                          Twine(bytes.size() - 8) +
                          " bytes after the length field");
  StringRef text = bytes.substr(8, headerLen);
  size_t badByte = 0;
  if (!llvm::json::isUTF8(text, &badByte))
    return fail(file, "header is not valid UTF-8 (byte " + Twine(badByte) +
                          " of the header)");
  // The format requires '{' first; it also rules out a bare scalar header.
  if (text.empty() || text.front() != '{')
    return fail(file, "header is not a JSON object (it must start with '{')");
  if (jsonNestingDepth(text) > SafeTensorsLimits::maxNesting)
    return fail(file, "header nests deeper than " +
                          Twine(SafeTensorsLimits::maxNesting) + " levels");
  Expected<llvm::json::Value> parsed = llvm::json::parse(text);
  if (!parsed)
    return fail(file,
                "header is not valid JSON: " + toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  if (!root)
    return fail(file, "header is not a JSON object");
  Expected<std::vector<std::string>> keys = scanKeys(file, text);
  if (!keys)
    return keys.takeError();

  SafeTensorsFile result;
  uint64_t dataSize = bytes.size() - 8 - headerLen;
  const uint8_t *data = bytes.bytes_begin() + 8 + headerLen;
  for (const std::string &key : *keys) {
    const llvm::json::Value *value = root->get(key);
    if (key == "__metadata__") {
      const llvm::json::Object *metaObj = value->getAsObject();
      if (!metaObj)
        return fail(file, "__metadata__ is not a JSON object");
      for (const auto &kv : *metaObj)
        result.meta[kv.first.str()] = "";
      // Check in key order so the first bad key reported is deterministic.
      for (auto &kv : result.meta) {
        std::optional<StringRef> s = metaObj->getString(kv.first);
        if (!s)
          return fail(file,
                      "__metadata__ " + quoted(kv.first) + " is not a string");
        kv.second = s->str();
      }
      continue;
    }
    TensorInfo info;
    if (Error err = parseEntry(file, key, *value, dataSize, info))
      return std::move(err);
    info.data = ArrayRef<uint8_t>(data + info.begin, info.numBytes());
    result.index[info.name] = result.entries.size();
    result.entries.push_back(std::move(info));
  }
  if (Error err = checkCoverage(file, result.entries, dataSize))
    return std::move(err);
  result.buffer = std::move(buffer);
  return std::move(result);
}

std::vector<StringRef> SafeTensorsFile::names() const {
  std::vector<StringRef> out;
  out.reserve(entries.size());
  for (const TensorInfo &t : entries)
    out.push_back(t.name);
  return out;
}

const TensorInfo *SafeTensorsFile::lookup(StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &entries[it->second];
}

Expected<const TensorInfo &> SafeTensorsFile::tensor(StringRef name) const {
  if (const TensorInfo *t = lookup(name))
    return *t;
  return fail(fileName(), "no tensor " + quoted(name));
}

std::optional<StringRef> SafeTensorsFile::metadata(StringRef key) const {
  auto it = meta.find(key.str());
  if (it == meta.end())
    return std::nullopt;
  return StringRef(it->second);
}

//===----------------------------------------------------------------------===//
// Typed copy-out
//===----------------------------------------------------------------------===//

/// IEEE binary16 to binary32; exact for every input, subnormals, infinities
/// and NaN payloads included.
static float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else {
    // Zero or subnormal: mant * 2^-24 is exact in binary32.
    float f = float(mant) * 0x1p-24f;
    return sign ? -f : f;
  }
  return llvm::bit_cast<float>(bits);
}

static float bf16ToFloat(uint16_t b) {
  return llvm::bit_cast<float>(uint32_t(b) << 16);
}

namespace {
/// Loads element i of a little-endian buffer (no alignment assumed).
template <typename T>
T load(const uint8_t *p, uint64_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}

/// The shared part of the read() overloads: lookup, count check, and the
/// refusal message. `convert` returns false for dtypes it does not take.
template <typename T, typename Convert>
Error readAs(const SafeTensorsFile &file, StringRef name, T *dst,
             uint64_t count, StringRef targetName, Convert convert) {
  const TensorInfo *t = file.lookup(name);
  if (!t)
    return fail(file.fileName(), "no tensor " + quoted(name));
  if (count != t->numElements())
    return fail(file.fileName(),
                "tensor " + quoted(name) + " has " + Twine(t->numElements()) +
                    " elements; the destination has " + Twine(count));
  if (!convert(*t, dst))
    return fail(file.fileName(), "tensor " + quoted(name) + " is " +
                                     dtypeName(t->dtype) +
                                     "; it is not read as " + targetName);
  return Error::success();
}

template <typename T>
bool convertFloating(const TensorInfo &t, T *dst) {
  const uint8_t *p = t.data.data();
  uint64_t n = t.numElements();
  switch (t.dtype) {
  case DType::F32:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = T(load<float>(p, i));
    return true;
  case DType::F64:
    // Narrowing to float rounds to nearest (IEEE 754; overflow gives inf).
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = T(load<double>(p, i));
    return true;
  case DType::BF16:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = T(bf16ToFloat(load<uint16_t>(p, i)));
    return true;
  case DType::F16:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = T(halfToFloat(load<uint16_t>(p, i)));
    return true;
  default:
    return false;
  }
}

bool convertInteger(const TensorInfo &t, int64_t *dst) {
  const uint8_t *p = t.data.data();
  uint64_t n = t.numElements();
  switch (t.dtype) {
  case DType::I64:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = load<int64_t>(p, i);
    return true;
  case DType::I32:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = load<int32_t>(p, i);
    return true;
  case DType::I16:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = load<int16_t>(p, i);
    return true;
  case DType::I8:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = load<int8_t>(p, i);
    return true;
  case DType::U8:
    for (uint64_t i = 0; i < n; ++i)
      dst[i] = load<uint8_t>(p, i);
    return true;
  default:
    return false;
  }
}
} // namespace

Error SafeTensorsFile::read(StringRef name, float *dst, uint64_t count) const {
  return readAs(*this, name, dst, count, "float", convertFloating<float>);
}

Error SafeTensorsFile::read(StringRef name, double *dst, uint64_t count) const {
  return readAs(*this, name, dst, count, "double", convertFloating<double>);
}

Error SafeTensorsFile::read(StringRef name, int64_t *dst,
                            uint64_t count) const {
  return readAs(*this, name, dst, count, "int64", convertInteger);
}
