//===- LogMel.cpp - Whisper-style log-mel features ------------------------===//

#include "mllm/runtime/data/LogMel.h"

#include "Codecs.h"

#include <algorithm>
#include <cmath>

using namespace mllm::runtime::data;

detail::PowerSpectrum::~PowerSpectrum() = default;

#ifndef MLLM_DATA_HAVE_FFTW
llvm::Expected<std::unique_ptr<detail::PowerSpectrum>>
detail::makePowerSpectrum(int64_t) {
  return codecError("log-mel features need FFTW3: built without it "
                    "(apt-get install libfftw3-dev and rebuild)");
}
#endif

int64_t LogMelOptions::windowSamples() const {
  return std::llround(windowSeconds * static_cast<double>(sampleRate));
}
int64_t LogMelOptions::hopSamples() const {
  return std::llround(hopSeconds * static_cast<double>(sampleRate));
}

// Slaney's scale: 3 mel per 200 Hz up to 1 kHz (15 mel), then 27 mel per
// factor 6.4.
static constexpr double kSlaneyHzPerMel = 200.0 / 3.0;
static constexpr double kSlaneyBreakHz = 1000.0;
static constexpr double kSlaneyBreakMel = 15.0;
static const double kSlaneyLogStep = std::log(6.4) / 27.0;

double mllm::runtime::data::hzToMel(double hz, MelScale scale) {
  if (scale == MelScale::Htk)
    return 2595.0 * std::log10(1.0 + hz / 700.0);
  if (hz < kSlaneyBreakHz)
    return hz / kSlaneyHzPerMel;
  return kSlaneyBreakMel + std::log(hz / kSlaneyBreakHz) / kSlaneyLogStep;
}

double mllm::runtime::data::melToHz(double mel, MelScale scale) {
  if (scale == MelScale::Htk)
    return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
  if (mel < kSlaneyBreakMel)
    return mel * kSlaneyHzPerMel;
  return kSlaneyBreakHz * std::exp(kSlaneyLogStep * (mel - kSlaneyBreakMel));
}

std::vector<float>
mllm::runtime::data::melFilterbank(int64_t melBins, int64_t fftSize,
                                   const LogMelOptions &options) {
  const int64_t freqs = fftSize / 2 + 1;
  const double rate = static_cast<double>(options.sampleRate);
  double fmax = options.fmax > 0 ? options.fmax : rate / 2;
  // melBins + 2 edges equally spaced in mel: filter m rises from edge m to
  // edge m + 1 and falls to edge m + 2.
  double lo = hzToMel(options.fmin, options.scale);
  double hi = hzToMel(fmax, options.scale);
  std::vector<double> edges(static_cast<size_t>(melBins + 2));
  for (int64_t i = 0; i < melBins + 2; ++i)
    edges[i] = melToHz(lo + (hi - lo) * static_cast<double>(i) /
                                static_cast<double>(melBins + 1),
                       options.scale);
  std::vector<float> bank(static_cast<size_t>(melBins * freqs), 0.0f);
  for (int64_t m = 0; m < melBins; ++m) {
    double left = edges[m], centre = edges[m + 1], right = edges[m + 2];
    double area =
        options.scale == MelScale::Slaney ? 2.0 / (right - left) : 1.0;
    for (int64_t k = 0; k < freqs; ++k) {
      double f = static_cast<double>(k) * rate / static_cast<double>(fftSize);
      double rise = (f - left) / (centre - left);
      double fall = (right - f) / (right - centre);
      double w = std::max(0.0, std::min(rise, fall));
      bank[m * freqs + k] = static_cast<float>(w * area);
    }
  }
  return bank;
}

LogMel::LogMel(LogMel &&) = default;
LogMel &LogMel::operator=(LogMel &&) = default;
LogMel::~LogMel() = default;

llvm::Expected<LogMel> LogMel::create(int64_t melBins,
                                      const LogMelOptions &options) {
  LogMel mel;
  mel.opts = options;
  mel.bins = melBins;
  mel.fftSize = options.windowSamples();
  mel.hop = options.hopSamples();
  if (melBins < 1 || mel.fftSize < 2 || mel.hop < 1)
    return detail::codecError(
        "log-mel features need mel bins, a window of at least 2 samples "
        "and a hop of at least 1 (got " +
        llvm::Twine(melBins) + " bins, window " + llvm::Twine(mel.fftSize) +
        ", hop " + llvm::Twine(mel.hop) + ")");
  auto fft = detail::makePowerSpectrum(mel.fftSize);
  if (!fft)
    return fft.takeError();
  mel.fft = std::move(*fft);
  mel.filters = melFilterbank(melBins, mel.fftSize, options);
  const int64_t freqs = mel.fftSize / 2 + 1;
  for (int64_t m = 0; m < melBins; ++m) {
    const float *w = mel.filters.data() + m * freqs;
    int64_t first = 0, last = freqs;
    while (first < freqs && w[first] == 0.0f)
      ++first;
    while (last > first && w[last - 1] == 0.0f)
      --last;
    mel.support.push_back({first, last});
  }
  // Periodic Hann (torch.hann_window's default), as Whisper's STFT.
  mel.window.resize(static_cast<size_t>(mel.fftSize));
  const double pi = 3.14159265358979323846;
  for (int64_t n = 0; n < mel.fftSize; ++n)
    mel.window[n] = 0.5 - 0.5 * std::cos(2 * pi * static_cast<double>(n) /
                                         static_cast<double>(mel.fftSize));
  return std::move(mel);
}

void LogMel::compute(llvm::ArrayRef<float> samples, int64_t frames,
                     float *out) const {
  const int64_t n = frames * hop, half = fftSize / 2, freqs = fftSize / 2 + 1;
  // The clip padded with zeros to n samples, then reflected by half a
  // window at both ends so every frame is centred on its hop (torch.stft's
  // center=True); frame `frames` of the STFT is dropped, as Whisper does.
  auto at = [&](int64_t i) -> double {
    if (i < 0)
      i = -i;
    if (i >= n)
      i = 2 * (n - 1) - i;
    return i >= 0 && i < static_cast<int64_t>(samples.size()) ? samples[i]
                                                              : 0.0;
  };
  std::vector<double> frame(static_cast<size_t>(fftSize));
  std::vector<double> power(static_cast<size_t>(freqs));
  double peak = -1e300;
  for (int64_t t = 0; t < frames; ++t) {
    int64_t start = t * hop - half;
    for (int64_t j = 0; j < fftSize; ++j)
      frame[j] = at(start + j) * window[j];
    fft->power(frame.data(), power.data());
    for (int64_t m = 0; m < bins; ++m) {
      const float *w = filters.data() + m * freqs;
      double e = 0;
      for (int64_t k = support[m].first; k < support[m].second; ++k)
        e += w[k] * power[k];
      double v = std::log10(std::max(e, 1e-10));
      peak = std::max(peak, v);
      out[t * bins + m] = static_cast<float>(v);
    }
  }
  auto floor = static_cast<float>(peak - opts.dynamicRange);
  for (int64_t i = 0; i < frames * bins; ++i)
    out[i] = (std::max(out[i], floor) + 4.0f) / 4.0f;
}
