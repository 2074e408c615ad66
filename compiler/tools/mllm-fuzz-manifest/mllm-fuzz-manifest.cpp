//===- mllm-fuzz-manifest.cpp - libFuzzer target for the data manifest ----===//
//
// Feeds arbitrary bytes to the data set's manifest reader (docs/data.md) as
// `mllm-run --data` reads a file, with a geometry of two encoders (images
// and audio, two items each, `<enc>` markers or placement), and lays out
// every sample it accepts with the byte-level tokenizer, as the packer
// does. The files `a.png` and `b.wav` exist (empty) next to the manifest,
// so lines naming them pass the existence check and reach the layout. Any
// crash, sanitizer report or hang is a bug: a line must only ever be
// accepted or counted as a problem with its line number.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/data/Manifest.h"
#include "mllm/runtime/data/Sample.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

using namespace mllm::runtime::data;

namespace {

std::string &directory() {
  static std::string dir;
  return dir;
}

DataGeometry geometry() {
  DataGeometry g;
  g.seqLen = 256;
  g.packing = 2;
  g.vocab = 300;
  g.numModalities = 2;
  EncoderInput vision;
  vision.name = "vision";
  vision.instance = "siglip";
  vision.modality = 0;
  vision.maxItems = 2;
  vision.tokensPerItem = 16;
  vision.height = vision.width = 32;
  EncoderInput audio;
  audio.name = "audio";
  audio.instance = "whisper";
  audio.kind = MediaKind::Audio;
  audio.modality = 1;
  audio.maxItems = 2;
  audio.tokensPerItem = 8;
  audio.placement = mllm::kernels::ItemPlacement::Append;
  audio.frames = 100;
  audio.melBins = 80;
  g.encoders = {vision, audio};
  return g;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::createUniqueDirectory("mllm-fuzz-manifest", dir))
    return 1;
  for (const char *name : {"a.png", "b.wav"}) {
    llvm::SmallString<128> path(dir);
    llvm::sys::path::append(path, name);
    std::error_code ec;
    llvm::raw_fd_ostream(path, ec);
    if (ec)
      return 1;
  }
  directory() = dir.str().str();
  std::atexit([] { llvm::sys::fs::remove_directories(directory()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const DataGeometry g = geometry();
  static const std::unique_ptr<ByteTokenizer> tokenizer = [] {
    auto created = ByteTokenizer::create(g.vocab, 0);
    if (!created) {
      llvm::consumeError(created.takeError());
      return std::unique_ptr<ByteTokenizer>();
    }
    return std::move(*created);
  }();
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::SmallString<128> path(directory());
  llvm::sys::path::append(path, "manifest.jsonl");
  for (bool strict : {false, true}) {
    Problems problems(path.str().str(), strict);
    auto samples = parseManifest(
        text, path, g, problems, [&](const ManifestSample &sample) {
          auto layout = layoutSample(sample, g, *tokenizer, true);
          return layout ? llvm::Error::success() : layout.takeError();
        });
    if (!samples) {
      llvm::consumeError(samples.takeError());
      continue;
    }
    (void)problems.summary();
  }
  return 0;
}
