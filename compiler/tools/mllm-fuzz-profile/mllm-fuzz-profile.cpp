//===- mllm-fuzz-profile.cpp - libFuzzer target for the profile reader ----===//
//
// Feeds arbitrary bytes to the `--profile` reader (docs/cost-model.md) as
// mllmc, mllm-sim and mllm-opt's mllm-partition read a file, and looks up
// the layers of the stdlib's shapes in what it accepts. Any crash,
// sanitizer report or hang is a bug: a profile must only ever be accepted
// or refused with a located error.
//
//===----------------------------------------------------------------------===//
#include "mllm/Plan/Profile.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<mllm::plan::Profile> profile =
      mllm::plan::Profile::parse(text, "fuzz.yaml");
  if (!profile) {
    llvm::consumeError(profile.takeError());
    return 0;
  }
  mllm::model::LayerShape shape;
  shape.hidden = 2048;
  shape.ffn = 8192;
  shape.heads = 32;
  shape.kvHeads = 8;
  shape.headDim = 64;
  mllm::plan::Workload workload;
  workload.tokens = 1753;
  workload.attentionSpan = 1753;
  (void)profile->lookup(mllm::LayerKind::TransformerBlock, shape, workload);
  return 0;
}
