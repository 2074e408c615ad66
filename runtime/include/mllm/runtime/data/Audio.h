//===- Audio.h - audio files to mono samples at the encoder's rate -*- C++ -*-//
//
// WAV, FLAC (and whatever else libsndfile reads) decoded to floats in
// [-1, 1], channels averaged to mono, resampled with libsamplerate's sinc
// converter to the rate the log-mel front end expects (16 kHz for the
// Whisper family). docs/data.md, "Audio".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_AUDIO_H
#define MLLM_RUNTIME_DATA_AUDIO_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mllm::runtime::data {

/// libsamplerate's sinc converters (its documented figures): passband as a
/// share of the lower Nyquist frequency, and SNR.
enum class ResampleQuality {
  Best,    ///< 97%, 145 dB; slowest.
  Medium,  ///< 90%, 121 dB; the default (7.2 of 8 kHz at 16 kHz).
  Fastest, ///< 80%, 97 dB; about 3x faster than Medium.
};

/// A file's format, from its header.
struct AudioInfo {
  int64_t frames = 0; ///< Samples per channel.
  int64_t sampleRate = 0;
  int64_t channels = 0;
  double seconds() const {
    return sampleRate > 0
               ? static_cast<double>(frames) / static_cast<double>(sampleRate)
               : 0.0;
  }
};

/// Whether audio at `from` Hz can be resampled to `to` Hz (positive rates,
/// at most 256-fold apart: libsamplerate's limit); the error says so.
llvm::Error checkResampling(int64_t from, int64_t to);

llvm::Expected<AudioInfo> probeAudio(llvm::StringRef path);

/// Mono samples of `path` at `sampleRate`. Fails with the library's
/// message, or when libsndfile (or, for another rate, libsamplerate) was
/// not built in.
llvm::Expected<std::vector<float>>
decodeAudio(llvm::StringRef path, int64_t sampleRate,
            ResampleQuality quality = ResampleQuality::Medium);

/// `samples` from rate `from` to rate `to` (a copy when equal).
llvm::Expected<std::vector<float>>
resample(llvm::ArrayRef<float> samples, int64_t from, int64_t to,
         ResampleQuality quality = ResampleQuality::Medium);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_AUDIO_H
