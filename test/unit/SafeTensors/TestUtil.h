//===- TestUtil.h - Helpers for the safetensors unit tests -----*- C++ -*-===//
//
// Hand-crafting files (a length prefix, a header, data), scratch directories
// that clean up after themselves, and whole-file reads for byte comparisons.
//
//===----------------------------------------------------------------------===//

#ifndef MLLM_TEST_SAFETENSORS_TESTUTIL_H
#define MLLM_TEST_SAFETENSORS_TESTUTIL_H

#include "mllm/runtime/SafeTensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include "gtest/gtest.h"

#include <optional>
#include <string>
#include <vector>

namespace mllm {
namespace testutil {

/// An 8-byte little-endian length (the header's size unless overridden),
/// the header, then the data.
inline std::string craft(llvm::StringRef header, llvm::StringRef data = "",
                         std::optional<uint64_t> length = std::nullopt) {
  uint64_t n = length.value_or(header.size());
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = char((n >> (8 * i)) & 0xFF);
  return out + header.str() + data.str();
}

/// The error open() gives for `bytes` (named ckpt.safetensors), or "" if the
/// bytes are accepted.
inline std::string openError(llvm::StringRef bytes) {
  llvm::Expected<runtime::SafeTensorsFile> file =
      runtime::SafeTensorsFile::openBuffer(llvm::MemoryBuffer::getMemBuffer(
          bytes, "ckpt.safetensors", /*RequiresNullTerminator=*/false));
  if (file)
    return "";
  return llvm::toString(file.takeError());
}

inline runtime::SafeTensorsFile openOk(llvm::StringRef bytes,
                                       llvm::StringRef name = "mem") {
  llvm::Expected<runtime::SafeTensorsFile> file =
      runtime::SafeTensorsFile::openBuffer(
          llvm::MemoryBuffer::getMemBufferCopy(bytes, name));
  if (!file) {
    ADD_FAILURE() << llvm::toString(file.takeError());
    // An empty but valid file keeps the caller's code simple.
    return std::move(*runtime::SafeTensorsFile::openBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(craft("{}"), name)));
  }
  return std::move(*file);
}

inline std::string errorText(llvm::Error err) {
  return err ? llvm::toString(std::move(err)) : "";
}

/// The whole file, or std::nullopt when it cannot be read.
inline std::optional<std::string> slurp(llvm::StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return std::nullopt;
  return (*buffer)->getBuffer().str();
}

inline bool spit(llvm::StringRef path, llvm::StringRef bytes) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return false;
  os << bytes;
  os.close();
  if (os.has_error()) {
    os.clear_error();
    return false;
  }
  return true;
}

/// A fresh directory, removed with its contents at the end of the test.
class ScratchDir {
public:
  ScratchDir() {
    std::error_code ec =
        llvm::sys::fs::createUniqueDirectory("mllm-safetensors", dir);
    EXPECT_FALSE(ec) << ec.message();
  }
  ~ScratchDir() {
    // Undo any chmod a test did, then remove everything.
    llvm::sys::fs::setPermissions(dir, llvm::sys::fs::all_all);
    llvm::sys::fs::remove_directories(dir);
  }
  std::string path(llvm::StringRef name) const {
    llvm::SmallString<256> p(dir);
    llvm::sys::path::append(p, name);
    return std::string(p);
  }
  llvm::StringRef str() const { return dir; }
  /// File names in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec))
      names.push_back(llvm::sys::path::filename(it->path()).str());
    std::sort(names.begin(), names.end());
    return names;
  }

private:
  llvm::SmallString<256> dir;
};

} // namespace testutil
} // namespace mllm

#endif // MLLM_TEST_SAFETENSORS_TESTUTIL_H
