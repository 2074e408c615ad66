//===- FuzzSafeTensors.cpp - libFuzzer target for the safetensors reader --===//
//
// Feeds arbitrary bytes to SafeTensorsFile::openBuffer. Whatever open()
// accepts must then be safe to use (ASan checks every tensor byte and every
// typed read stays in bounds) and must survive a round trip through
// SafeTensorsWriter: reader and writer agree on what a valid file is.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/SafeTensors.h"

#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>

using namespace mllm::runtime;

static void check(bool ok, const char *what) {
  if (!ok) {
    llvm::errs() << "invariant violated: " << what << "\n";
    std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::openBuffer(
      llvm::MemoryBuffer::getMemBuffer(bytes, "fuzz.safetensors",
                                       /*RequiresNullTerminator=*/false));
  if (!file) {
    std::string message = llvm::toString(file.takeError());
    check(llvm::StringRef(message).starts_with("fuzz.safetensors: "),
          "every error names the file");
    return 0;
  }

  SafeTensorsWriter writer;
  for (const TensorInfo &t : file->tensors()) {
    uint64_t n = t.numElements();
    check(t.data.size() == t.numBytes(), "data spans data_offsets");
    check(n * dtypeSize(t.dtype) == t.numBytes(), "shape matches bytes");
    // Every accepted byte must be addressable (ASan checks the loads).
    unsigned sum = 0;
    for (uint8_t b : t.data)
      sum += b;
    (void)sum;
    std::vector<float> f(n);
    std::vector<double> d(n);
    std::vector<int64_t> i(n);
    llvm::consumeError(file->read(t.name, f.data(), n));
    llvm::consumeError(file->read(t.name, d.data(), n));
    llvm::consumeError(file->read(t.name, i.data(), n));
    writer.add(t.name, t.dtype, t.shape, t.data.data());
  }
  for (const auto &kv : file->metadata())
    writer.setMetadata(kv.first, kv.second);

  llvm::Expected<std::string> again = writer.serialize();
  if (!again) {
    llvm::errs() << llvm::toString(again.takeError()) << "\n";
    check(false, "the writer accepts what the reader accepted");
  }
  llvm::Expected<SafeTensorsFile> reread =
      SafeTensorsFile::openBuffer(llvm::MemoryBuffer::getMemBuffer(
          *again, "reread", /*RequiresNullTerminator=*/false));
  if (!reread) {
    llvm::errs() << llvm::toString(reread.takeError()) << "\n";
    check(false, "the reader accepts what the writer wrote");
  }
  check(reread->metadata() == file->metadata(), "metadata round-trips");
  check(reread->size() == file->size(), "tensor count round-trips");
  for (size_t k = 0; k < file->size(); ++k) {
    const TensorInfo &a = file->tensors()[k], &b = reread->tensors()[k];
    check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape,
          "name, dtype and shape round-trip in file order");
    check(a.data.size() == b.data.size() &&
              (a.data.empty() ||
               std::memcmp(a.data.data(), b.data.data(), a.data.size()) == 0),
          "bytes round-trip");
  }
  return 0;
}
