//===- ReadFile.h - Reading an input file up to a size ----------*- C++ -*-===//
//
// MemoryBuffer::getFile reads a character device or a pipe to its end:
// `mllmc /dev/zero` grew until the OOM killer. Inputs with a size limit
// (a spec, a plan, a profile) are read through readFileAtMost, which stops
// one byte past the limit; the caller's size check then reports the file
// as too large.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_READFILE_H
#define MLLM_RUNTIME_READFILE_H

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/ErrorOr.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"

#include <memory>

namespace mllm::runtime {

/// The first `maxBytes` + 1 bytes of `path` at most ("-": standard input),
/// as a buffer named `path`.
inline llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>>
readFileAtMost(llvm::StringRef path, uint64_t maxBytes) {
  namespace fs = llvm::sys::fs;
  fs::file_t file;
  bool stdinput = path == "-";
  if (stdinput) {
    file = fs::getStdinHandle();
  } else {
    llvm::Expected<fs::file_t> opened =
        fs::openNativeFileForRead(path, fs::OF_Text);
    if (!opened)
      return llvm::errorToErrorCode(opened.takeError());
    file = *opened;
  }
  llvm::SmallString<0> data;
  constexpr size_t kChunk = 1 << 16;
  std::error_code ec;
  while (data.size() <= maxBytes) {
    size_t at = data.size();
    data.resize_for_overwrite(at + kChunk);
    llvm::Expected<size_t> got = fs::readNativeFile(
        file, llvm::MutableArrayRef<char>(data.data() + at, kChunk));
    if (!got) {
      ec = llvm::errorToErrorCode(got.takeError());
      data.truncate(at);
      break;
    }
    data.truncate(at + *got);
    if (*got == 0)
      break;
  }
  if (!stdinput)
    fs::closeFile(file);
  if (ec)
    return ec;
  return llvm::MemoryBuffer::getMemBufferCopy(data, path);
}

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_READFILE_H
