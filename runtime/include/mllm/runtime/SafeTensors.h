//===- SafeTensors.h - safetensors checkpoint reader and writer -*- C++ -*-===//
//
// The runtime's checkpoints (weights, optimizer state, step, data position,
// RNG state) and released weights (`--init FILE.safetensors`) use the public
// safetensors format: a u64 little-endian header length N, N bytes of JSON
// `{name: {"dtype", "shape", "data_offsets": [begin, end]}}` with an optional
// `"__metadata__": {string: string}`, then raw C-order little-endian data.
// No safetensors package exists in Debian, so we implement it here.
//
// SafeTensorsFile treats every file as hostile: open() validates the whole
// header (sizes, JSON, dtypes, shapes, offsets, overlaps, coverage) before
// any tensor byte is exposed, and every error names the file and the fault.
// SafeTensorsWriter writes deterministically and atomically (temporary file,
// fsync, rename, fsync of the directory). docs/checkpoints.md describes the
// format we write and the guarantees.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_RUNTIME_SAFETENSORS_H
#define MLLM_RUNTIME_SAFETENSORS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace mllm {
namespace runtime {

/// The element types we read and write; the names are the format's.
enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

/// The format's spelling ("F32", "BOOL", ...).
llvm::StringRef dtypeName(DType type);
/// Inverse of dtypeName(); std::nullopt for anything else (case-sensitive,
/// as in the format).
std::optional<DType> parseDType(llvm::StringRef name);
/// Bytes per element.
unsigned dtypeSize(DType type);

/// Limits that open() enforces (and the writer respects).
struct SafeTensorsLimits {
  /// The header length a reader accepts, as in the reference implementation:
  /// a larger value is a corrupt or hostile file, not a real header.
  static constexpr uint64_t maxHeaderBytes = 100'000'000;
  /// JSON nesting depth; the format needs 3. llvm::json parses recursively,
  /// so an unbounded depth would let a file overflow the stack.
  static constexpr unsigned maxNesting = 64;
};

/// One tensor of an opened file.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  llvm::SmallVector<int64_t, 4> shape;
  /// data_offsets, relative to the first byte after the header.
  uint64_t begin = 0, end = 0;
  /// The raw little-endian bytes (end - begin of them) inside the file's
  /// buffer. No alignment is promised: a foreign file may have any header
  /// length, so copy out (or use SafeTensorsFile::read) before typed access.
  llvm::ArrayRef<uint8_t> data;

  /// Product of the shape; 1 for a scalar (shape []).
  uint64_t numElements() const;
  uint64_t numBytes() const { return end - begin; }
};

/// A validated, read-only safetensors file. The bytes stay mapped (or held)
/// for the object's lifetime; TensorInfo::data points into them.
class SafeTensorsFile {
public:
  /// Maps `path` and validates it. Errors read "PATH: what is wrong".
  static llvm::Expected<SafeTensorsFile> open(llvm::StringRef path);
  /// Validates bytes already in memory; errors are prefixed with the
  /// buffer's identifier. Used by the fuzzer and by tests.
  static llvm::Expected<SafeTensorsFile>
  openBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer);

  /// The file name (or buffer identifier) used in messages.
  llvm::StringRef fileName() const { return buffer->getBufferIdentifier(); }
  /// Tensors in the order their keys appear in the header.
  llvm::ArrayRef<TensorInfo> tensors() const { return entries; }
  /// Tensor names in the order their keys appear in the header.
  std::vector<llvm::StringRef> names() const;
  size_t size() const { return entries.size(); }
  bool contains(llvm::StringRef name) const { return index.count(name); }
  /// nullptr when there is no such tensor.
  const TensorInfo *lookup(llvm::StringRef name) const;
  /// Like lookup(), but a missing tensor is an error naming the file.
  llvm::Expected<const TensorInfo &> tensor(llvm::StringRef name) const;
  /// `__metadata__`, empty when absent.
  const std::map<std::string, std::string> &metadata() const { return meta; }
  /// One metadata value, std::nullopt when absent.
  std::optional<llvm::StringRef> metadata(llvm::StringRef key) const;

  /// Copies tensor `name` into dst[0, count), converting F32, BF16, F16 and
  /// F64 to float (F64 rounds to nearest; out-of-range values become inf).
  /// `count` must equal the tensor's element count. Integer and BOOL tensors
  /// are refused: converting them to float silently would hide a mix-up.
  llvm::Error read(llvm::StringRef name, float *dst, uint64_t count) const;
  /// As above into double (F64, F32, BF16, F16; all exact).
  llvm::Error read(llvm::StringRef name, double *dst, uint64_t count) const;
  /// Integer tensors (I64, I32, I16, I8, U8; all exact) into int64_t, for
  /// step counters and RNG state. Floating-point and BOOL are refused.
  llvm::Error read(llvm::StringRef name, int64_t *dst, uint64_t count) const;
  /// Convenience: the whole tensor as a vector.
  template <typename T>
  llvm::Expected<std::vector<T>> readAll(llvm::StringRef name) const {
    const TensorInfo *info = lookup(name);
    std::vector<T> out(info ? info->numElements() : 0);
    if (llvm::Error err = read(name, out.data(), out.size()))
      return std::move(err);
    return std::move(out);
  }

private:
  SafeTensorsFile() = default;

  std::unique_ptr<llvm::MemoryBuffer> buffer;
  std::vector<TensorInfo> entries;
  llvm::StringMap<size_t> index;
  std::map<std::string, std::string> meta;
};

/// Builds a safetensors file. Tensors are written in insertion order and
/// every JSON key in a fixed order, so the same inputs give the same bytes.
///
/// Mistakes in add()/setMetadata() (a duplicate or reserved name, a negative
/// dimension, an element count that does not match the shape, ...) are
/// recorded, and write()/serialize() report the first one and write nothing.
class SafeTensorsWriter {
public:
  /// Produces a tensor's bytes: fills `out` with bytes [offset, offset +
  /// out.size()) of the tensor. The writer calls it for consecutive chunks
  /// (at most chunkBytes each), so a source may copy from a device or
  /// compute on the fly. An error aborts the write.
  using Source = std::function<llvm::Error(uint64_t offset,
                                           llvm::MutableArrayRef<uint8_t> out)>;
  static constexpr uint64_t chunkBytes = 4 << 20;

  /// Raw little-endian bytes of any dtype. Nothing is copied: `data` must
  /// stay valid until the last write()/serialize().
  void add(llvm::StringRef name, DType dtype, llvm::ArrayRef<int64_t> shape,
           const void *data);
  /// Bytes produced by a callback (see Source).
  void add(llvm::StringRef name, DType dtype, llvm::ArrayRef<int64_t> shape,
           Source source);
  /// Typed forms; the element count must match the shape.
  void add(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
           llvm::ArrayRef<float> data);
  void add(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
           llvm::ArrayRef<double> data);
  void add(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
           llvm::ArrayRef<int64_t> data);
  void add(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
           llvm::ArrayRef<int32_t> data);

  /// Sets (or replaces) one `__metadata__` entry. Keys are written sorted.
  void setMetadata(llvm::StringRef key, llvm::StringRef value);

  /// Writes the file atomically: a temporary file `PATH.tmp-XXXXXXXX` in the
  /// same directory is written, fsync'ed and renamed over `path`, then the
  /// directory is fsync'ed. On any failure before the rename the temporary
  /// is removed and an existing file at `path` is untouched. (A process that
  /// is killed mid-write leaves its temporary behind, never a partial
  /// `path`; one ended by SIGINT or SIGTERM removes it.) If only the final
  /// directory fsync fails, `path` already holds the new file and the error
  /// says so. A link is written through to the file it names, and a device
  /// or a pipe (`/dev/null`) in place, as is any path under /dev or /proc
  /// (`/dev/stdout` redirected to a file: appended to); a directory and a
  /// link to nothing are errors.
  llvm::Error write(llvm::StringRef path) const;
  /// The bytes write() would produce, in memory (tests, small files).
  llvm::Expected<std::string> serialize() const;

  size_t size() const { return pending.size(); }

private:
  struct Pending {
    std::string name;
    DType dtype;
    llvm::SmallVector<int64_t, 4> shape;
    uint64_t bytes;
    Source source;
  };
  using Sink = llvm::function_ref<llvm::Error(llvm::ArrayRef<uint8_t>)>;

  void addImpl(llvm::StringRef name, DType dtype, llvm::ArrayRef<int64_t> shape,
               std::optional<uint64_t> count, Source source);
  llvm::Expected<std::string> header() const;
  llvm::Error emit(llvm::StringRef fileName, Sink sink) const;
  /// write() to a device or a pipe: no temporary, no rename.
  llvm::Error writeInPlace(llvm::StringRef path) const;

  std::vector<Pending> pending;
  llvm::StringMap<size_t> index;
  std::map<std::string, std::string> meta;
  uint64_t totalBytes = 0;
  /// The first mistake in add()/setMetadata(); reported by write().
  std::string firstError;
};

/// fsync of directory `dir`, which makes a rename into it survive a crash
/// (llvm::sys::fs has none). A file system that refuses fsync on a
/// directory (EINVAL) counts as success: there is nothing more to do there.
std::error_code syncDirectory(llvm::StringRef dir);

} // namespace runtime
} // namespace mllm

#endif // MLLM_RUNTIME_SAFETENSORS_H
