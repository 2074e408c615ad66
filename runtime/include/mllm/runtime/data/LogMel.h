//===- LogMel.h - Whisper-style log-mel features ----------------*- C++ -*-===//
//
// What an audio front end reads: the clip zero-padded to its windows, a
// short-time power spectrum (25 ms periodic Hann window, the spec's hop,
// centred frames with reflected edges, FFTW3), a triangular mel filterbank
// (Slaney scale and area norm as librosa and Whisper, or HTK), log10 with
// a 1e-10 floor, everything below the item's peak - 8 raised to it, then
// (x + 4) / 4. docs/data.md, "Audio" has the exact formulas.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_LOGMEL_H
#define MLLM_RUNTIME_DATA_LOGMEL_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace mllm::runtime::data {

namespace detail {
class PowerSpectrum;
} // namespace detail

enum class MelScale {
  /// Linear below 1 kHz, logarithmic above; each filter scaled to unit
  /// area (librosa's default, Whisper's filters).
  Slaney,
  /// 2595 log10(1 + f / 700); filters peak at 1, unscaled.
  Htk,
};

struct LogMelOptions {
  int64_t sampleRate = 16000;
  double windowSeconds = 0.025; ///< 400 samples at 16 kHz.
  /// The default hop (10 ms: the language's default and Whisper's); an
  /// encoder whose plan records its own (`hop`) uses that.
  double hopSeconds = 0.010;
  MelScale scale = MelScale::Slaney;
  double fmin = 0;
  double fmax = 0; ///< 0: the Nyquist frequency.
  /// Whisper's dynamic range: values below max - 8 (log10 units) are raised.
  double dynamicRange = 8.0;

  int64_t windowSamples() const;
  int64_t hopSamples() const;
};

/// The filterbank, [melBins, fftSize / 2 + 1], row-major.
std::vector<float> melFilterbank(int64_t melBins, int64_t fftSize,
                                 const LogMelOptions &options);

/// Hz to mel and back on `scale`.
double hzToMel(double hz, MelScale scale);
double melToHz(double mel, MelScale scale);

class LogMel {
public:
  /// Fails without FFTW3, or on options that give no window or hop.
  static llvm::Expected<LogMel> create(int64_t melBins,
                                       const LogMelOptions &options);
  LogMel(LogMel &&);
  LogMel &operator=(LogMel &&);
  ~LogMel();

  /// Not thread-safe (the FFT's buffers are the object's): one LogMel per
  /// thread. Features of `samples` (at options.sampleRate), zero-padded to
  /// `frames` hops (longer input is a caller's error: audio is never cut here),
  /// as [frames, melBins] at `out`. The dynamic-range floor is taken over all
  /// `frames`: one item is normalised as a whole.
  void compute(llvm::ArrayRef<float> samples, int64_t frames, float *out) const;

  const LogMelOptions &options() const { return opts; }
  int64_t melBins() const { return bins; }

private:
  LogMel() = default;
  LogMelOptions opts;
  int64_t bins = 0, fftSize = 0, hop = 0;
  std::vector<float> filters;
  /// Per filter, the FFT bins [first, last) where it is not zero: a
  /// filter spans a few bins, so the product skips the rest.
  std::vector<std::pair<int64_t, int64_t>> support;
  std::vector<double> window;
  std::unique_ptr<detail::PowerSpectrum> fft;
};

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_LOGMEL_H
