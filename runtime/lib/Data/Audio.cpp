//===- Audio.cpp - audio files to mono samples at the encoder's rate ------===//

#include "Codecs.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::detail;

[[maybe_unused]] static llvm::Error
missing(llvm::StringRef path, const char *what, const char *package) {
  return codecError("cannot decode '" + path + "': built without " + what +
                    " (apt-get install " + package + " and rebuild)");
}

llvm::Expected<AudioInfo>
mllm::runtime::data::probeAudio(llvm::StringRef path) {
#ifdef MLLM_DATA_HAVE_SNDFILE
  return probeSoundFile(path);
#else
  return missing(path, "libsndfile", "libsndfile1-dev");
#endif
}

llvm::Error mllm::runtime::data::checkResampling(int64_t from, int64_t to) {
  if (from <= 0 || to <= 0)
    return codecError("sample rates must be positive");
  // libsamplerate's limit on the ratio of the rates.
  if (to > 256 * from || from > 256 * to)
    return codecError(
        llvm::formatv("a sample rate of {0} Hz cannot be resampled to the "
                      "encoder's {1} Hz (the rates may differ 256-fold at "
                      "most: {2:f1} Hz to {3} Hz); resample the file first",
                      from, to, static_cast<double>(to) / 256.0, to * 256)
            .str());
  return llvm::Error::success();
}

llvm::Expected<std::vector<float>>
mllm::runtime::data::resample(llvm::ArrayRef<float> samples, int64_t from,
                              int64_t to, ResampleQuality quality) {
  if (llvm::Error e = checkResampling(from, to))
    return std::move(e);
  if (from == to)
    return std::vector<float>(samples.begin(), samples.end());
#ifdef MLLM_DATA_HAVE_SAMPLERATE
  return resampleMono(samples, from, to, quality);
#else
  (void)quality;
  return codecError("cannot resample from " + llvm::Twine(from) + " Hz to " +
                    llvm::Twine(to) +
                    " Hz: built without libsamplerate "
                    "(apt-get install libsamplerate0-dev and rebuild)");
#endif
}

llvm::Expected<std::vector<float>>
mllm::runtime::data::decodeAudio(llvm::StringRef path, int64_t sampleRate,
                                 ResampleQuality quality) {
#ifdef MLLM_DATA_HAVE_SNDFILE
  AudioInfo info;
  auto interleaved = readSoundFile(path, info);
  if (!interleaved)
    return interleaved.takeError();
  std::vector<float> mono(static_cast<size_t>(info.frames));
  // Mixed down by the mean of the channels, as Whisper's loader (ffmpeg
  // -ac 1) does.
  float scale = 1.0f / static_cast<float>(info.channels);
  for (int64_t i = 0; i < info.frames; ++i) {
    float sum = 0;
    for (int64_t c = 0; c < info.channels; ++c)
      sum += (*interleaved)[i * info.channels + c];
    mono[i] = sum * scale;
  }
  if (info.sampleRate == sampleRate)
    return mono;
  auto out = resample(mono, info.sampleRate, sampleRate, quality);
  if (!out)
    return codecError("'" + path + "': " + llvm::toString(out.takeError()));
  return out;
#else
  (void)sampleRate, (void)quality;
  return missing(path, "libsndfile", "libsndfile1-dev");
#endif
}
