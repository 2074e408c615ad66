//===- InteropDriver.cpp - Our side of the PyTorch interop test -----------===//
//
// Run by interop.py:
//   mllm-safetensors-interop write FILE   writes the tensors interop.py
//                                         expects (every dtype we write)
//   mllm-safetensors-interop check FILE   loads the file interop.py wrote
//                                         from the public format alone and
//                                         checks every value
// The expected values are defined twice on purpose, here and in the
// script: the test fails if either side reads or writes the format wrong.
// Exit code 0 on success, 1 with a message on any mismatch.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/SafeTensors.h"

#include "llvm/ADT/bit.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdint>
#include <vector>

using namespace mllm::runtime;

namespace {

int failures = 0;

void expect(bool ok, const llvm::Twine &what) {
  if (!ok) {
    llvm::errs() << "mismatch: " << what << "\n";
    ++failures;
  }
}

int writeFile(llvm::StringRef path) {
  std::vector<float> weight(6);
  for (int i = 0; i < 6; ++i)
    weight[i] = float(i) * 0.5f - 1.0f;
  std::vector<double> bias = {1.0 / 3.0, -0.0, 1e300};
  std::vector<int64_t> step = {1234567890123};
  std::vector<int64_t> rng = {-1, 0, int64_t(1) << 62, INT64_MIN};
  std::vector<int32_t> small = {-7, 7};
  std::vector<uint16_t> half = {0x3C00, 0xC000, 0x7BFF};  // 1, -2, 65504
  std::vector<uint16_t> brain = {0x3F80, 0xC020, 0x4049}; // 1, -2.5, 3.140625
  std::vector<uint8_t> mask = {1, 0, 1};
  std::vector<uint8_t> bytes = {0, 255};
  std::vector<int8_t> signedBytes = {-128, 127};
  std::vector<int16_t> shorts = {-32768, 32767};

  SafeTensorsWriter w;
  w.add("model.weight", {2, 3}, weight);
  w.add("model.bias", {3}, bias);
  w.add("optim.step", {}, step);
  w.add("rng.state", {4}, rng);
  w.add("small", {2}, small);
  w.add("half", DType::F16, {3}, half.data());
  w.add("brain", DType::BF16, {3}, brain.data());
  w.add("empty", {0, 4}, llvm::ArrayRef<float>());
  w.add("mask", DType::Bool, {3}, mask.data());
  w.add("bytes", DType::U8, {2}, bytes.data());
  w.add("signed_bytes", DType::I8, {2}, signedBytes.data());
  w.add("shorts", DType::I16, {2}, shorts.data());
  w.setMetadata("step", "1234567890123");
  w.setMetadata("plan_hash", "abc123");
  if (llvm::Error err = w.write(path)) {
    llvm::errs() << llvm::toString(std::move(err)) << "\n";
    return 1;
  }
  return 0;
}

int checkFile(llvm::StringRef path) {
  llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
  if (!file) {
    llvm::errs() << llvm::toString(file.takeError()) << "\n";
    return 1;
  }
  // File order is the Python dict order of the header.
  std::vector<llvm::StringRef> names = file->names();
  std::vector<llvm::StringRef> wantNames = {"linear.weight", "linear.bias",
                                            "step", "empty"};
  expect(names == wantNames, "tensor names or their order");

  const TensorInfo *weight = file->lookup("linear.weight");
  expect(weight && weight->dtype == DType::F32 &&
             weight->shape == llvm::SmallVector<int64_t, 4>{3, 4},
         "linear.weight is F32 [3, 4]");
  llvm::Expected<std::vector<float>> w = file->readAll<float>("linear.weight");
  if (!w) {
    llvm::errs() << llvm::toString(w.takeError()) << "\n";
    return 1;
  }
  for (int i = 0; i < 12; ++i)
    expect((*w)[i] == float(i) * 0.25f - 1.5f,
           "linear.weight[" + llvm::Twine(i) + "]");

  const TensorInfo *bias = file->lookup("linear.bias");
  expect(bias && bias->dtype == DType::BF16 &&
             bias->shape == llvm::SmallVector<int64_t, 4>{5},
         "linear.bias is BF16 [5]");
  llvm::Expected<std::vector<float>> b = file->readAll<float>("linear.bias");
  if (!b) {
    llvm::errs() << llvm::toString(b.takeError()) << "\n";
    return 1;
  }
  std::vector<float> wantBias = {1.0f, -2.5f, 0.15625f, 65536.0f, -0.0078125f};
  for (int i = 0; i < 5; ++i)
    expect((*b)[i] == wantBias[i], "linear.bias[" + llvm::Twine(i) + "]");
  // The raw bytes too: 1.0 in BF16 is 0x3F80, stored little-endian.
  if (bias && bias->data.size() == 10)
    expect(bias->data[0] == 0x80 && bias->data[1] == 0x3F,
           "linear.bias[0] bits are 0x3F80");

  llvm::Expected<std::vector<int64_t>> step = file->readAll<int64_t>("step");
  expect(step && step->size() == 1 && (*step)[0] == -42, "step is I64 -42");
  if (!step)
    llvm::consumeError(step.takeError());
  const TensorInfo *empty = file->lookup("empty");
  expect(empty && empty->numElements() == 0 &&
             empty->shape == llvm::SmallVector<int64_t, 4>{0, 3},
         "empty is [0, 3]");

  expect(file->metadata("producer") == llvm::StringRef("python"),
         "metadata producer");
  expect(file->metadata("step") == llvm::StringRef("7"), "metadata step");
  expect(file->metadata().size() == 2, "two metadata entries");
  if (failures)
    return 1;
  llvm::outs() << "checked " << file->size() << " tensors from " << path
               << "\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    llvm::errs() << "usage: mllm-safetensors-interop write|check FILE\n";
    return 2;
  }
  llvm::StringRef mode = argv[1];
  if (mode == "write")
    return writeFile(argv[2]);
  if (mode == "check")
    return checkFile(argv[2]);
  llvm::errs() << "unknown mode '" << mode << "'\n";
  return 2;
}
