//===- TestFiles.h - small media files the data tests draw ------*- C++ -*-===//
//
// Every file a test reads is made here, in a fresh temporary directory, with
// the same Debian libraries the decoders use (their writers, not ours), so
// the tests need no fixture files.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TEST_RUNTIMEDATA_TESTFILES_H
#define MLLM_TEST_RUNTIMEDATA_TESTFILES_H

#include "mllm/runtime/data/Geometry.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

// A test that needs a codec the library was built without is skipped, as
// the library itself skips what is not installed.
#ifdef MLLM_DATA_HAVE_PNG
#define MLLM_NEEDS_PNG()
#else
#define MLLM_NEEDS_PNG() GTEST_SKIP() << "built without libpng"
#endif
#ifdef MLLM_DATA_HAVE_JPEG
#define MLLM_NEEDS_JPEG()
#else
#define MLLM_NEEDS_JPEG() GTEST_SKIP() << "built without libjpeg"
#endif
#if defined(MLLM_DATA_HAVE_SNDFILE) && defined(MLLM_DATA_HAVE_SAMPLERATE)
#define MLLM_NEEDS_AUDIO()
#else
#define MLLM_NEEDS_AUDIO()                                                     \
  GTEST_SKIP() << "built without libsndfile or libsamplerate"
#endif
#ifdef MLLM_DATA_HAVE_FFTW
#define MLLM_NEEDS_FFTW()
#else
#define MLLM_NEEDS_FFTW() GTEST_SKIP() << "built without FFTW3"
#endif

namespace mllm::runtime::data::test {

/// A directory removed with its files when the object goes.
class TempDir {
public:
  TempDir();
  ~TempDir();
  std::string path(const std::string &name) const;
  /// Writes `text` to `name`; returns the path.
  std::string write(const std::string &name, const std::string &text) const;

private:
  std::string root;
};

/// RGB (channels 3) or grey (1) pixels from `pixel(y, x, c)`.
using PixelFn = std::function<uint8_t(int64_t y, int64_t x, int64_t c)>;
bool writePng(const std::string &path, int64_t width, int64_t height,
              int64_t channels, const PixelFn &pixel);
bool writeJpeg(const std::string &path, int64_t width, int64_t height,
               int64_t channels, const PixelFn &pixel, int quality = 95);
/// 16-bit PCM WAV, or FLAC when `flac`; interleaved samples in [-1, 1].
bool writeSound(const std::string &path, const std::vector<float> &samples,
                int64_t rate, int64_t channels, bool flac = false);
std::vector<float> tone(double hz, double seconds, int64_t rate,
                        double amplitude = 0.5);

/// A small geometry: 64-token sequences, 2 per microbatch, 2 microbatches,
/// vocab 300; encoder "vision" (8 x 8 RGB images, 4 tokens, up to 2 per
/// sample, prepended) and "audio" (1 window of 20 frames x 8 mels, 3
/// tokens, appended). Its modalities are 0 and 1.
DataGeometry smallGeometry();

} // namespace mllm::runtime::data::test

#endif // MLLM_TEST_RUNTIMEDATA_TESTFILES_H
