//===- SndFileDecode.cpp - audio files through libsndfile -----------------===//

#include "Codecs.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <mutex>

using namespace mllm::runtime::data;

namespace {

/// Owns an open SNDFILE.
struct SoundFile {
  SNDFILE *file = nullptr;
  SF_INFO info{};
  ~SoundFile() {
    if (file)
      sf_close(file);
  }
  llvm::Error open(llvm::StringRef path) {
    // A failed sf_open leaves its message in one static buffer for all
    // threads: open and read the message under one lock.
    static std::mutex failures;
    std::lock_guard<std::mutex> hold(failures);
    file = sf_open(path.str().c_str(), SFM_READ, &info);
    if (!file)
      return detail::codecError("cannot decode audio '" + path +
                                "': " + sf_strerror(nullptr));
    if (info.channels < 1 || info.samplerate < 1)
      return detail::codecError("audio '" + path + "' has no channels");
    return llvm::Error::success();
  }
};

} // namespace

llvm::Expected<AudioInfo> detail::probeSoundFile(llvm::StringRef path) {
  SoundFile f;
  if (llvm::Error e = f.open(path))
    return std::move(e);
  return AudioInfo{f.info.frames, f.info.samplerate, f.info.channels};
}

llvm::Expected<std::vector<float>> detail::readSoundFile(llvm::StringRef path,
                                                         AudioInfo &info) {
  SoundFile f;
  if (llvm::Error e = f.open(path))
    return std::move(e);
  info = AudioInfo{f.info.frames, f.info.samplerate, f.info.channels};
  std::vector<float> samples(static_cast<size_t>(f.info.frames) *
                             f.info.channels);
  // Integer formats are scaled to [-1, 1] by sf_readf_float (SFC_SET_NORM
  // is on by default).
  sf_count_t got = sf_readf_float(f.file, samples.data(), f.info.frames);
  if (got != f.info.frames)
    return detail::codecError(
        "audio '" + path + "' ended after " + llvm::Twine(got) + " of " +
        llvm::Twine(f.info.frames) + " frames: " + sf_strerror(f.file));
  // A float file may hold NaN, infinity or values so large that the
  // spectrum's power overflows; one such sample makes the step's loss NaN,
  // which would read as a divergence of training. Float audio is in
  // [-1, 1] (some tools write the 16-bit range): far beyond is refused.
  constexpr float kMaxMagnitude = 1e6f;
  auto bad = llvm::find_if(samples, [&](float x) {
    return !std::isfinite(x) || std::abs(x) > kMaxMagnitude;
  });
  if (bad != samples.end()) {
    std::string what = std::isnan(*bad)   ? "NaN"
                       : std::isinf(*bad) ? "infinite"
                                          : llvm::formatv("{0:e}, beyond "
                                                          "the 1e6 audio "
                                                          "is read to",
                                                          *bad)
                                                .str();
    return detail::codecError(
        "audio '" + path + "' holds a sample that is " + what + " (frame " +
        llvm::Twine((bad - samples.begin()) / std::max(f.info.channels, 1)) +
        ")");
  }
  return samples;
}
