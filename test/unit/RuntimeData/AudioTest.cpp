//===- AudioTest.cpp - WAV/FLAC decoding, resampling, log-mel -------------===//

#include "TestFiles.h"

#include "mllm/runtime/data/Audio.h"
#include "mllm/runtime/data/LogMel.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::test;

namespace {

/// |DFT of `x` at `hz`|, normalised to the amplitude of a sine.
double amplitudeAt(const std::vector<float> &x, double hz, double rate) {
  std::complex<double> sum = 0;
  for (size_t n = 0; n < x.size(); ++n)
    sum += static_cast<double>(x[n]) *
           std::polar(1.0, -2 * M_PI * hz * static_cast<double>(n) / rate);
  return 2 * std::abs(sum) / static_cast<double>(x.size());
}

// An independent Whisper front end, written from the definitions (plain
// DFT in double, Slaney's scale in its closed form), to check LogMel
// against.
double melOf(double hz) {
  return hz < 1000 ? 3 * hz / 200
                   : 15 + 27 * std::log(hz / 1000) / std::log(6.4);
}
double hzOf(double mel) {
  return mel < 15 ? 200 * mel / 3 : 1000 * std::pow(6.4, (mel - 15) / 27);
}

std::vector<double> referenceLogMel(const std::vector<float> &audio,
                                    int64_t frames, int64_t bins) {
  const int64_t nfft = 400, hop = 160, rate = 16000, n = frames * hop;
  std::vector<double> x(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(audio.size()); ++i)
    x[i] = audio[i];
  // Reflect-pad by nfft / 2 on both sides.
  std::vector<double> padded;
  for (int64_t i = nfft / 2; i > 0; --i)
    padded.push_back(x[i]);
  padded.insert(padded.end(), x.begin(), x.end());
  for (int64_t i = 1; i <= nfft / 2; ++i)
    padded.push_back(x[n - 1 - i]);
  std::vector<double> edges;
  for (int64_t i = 0; i < bins + 2; ++i)
    edges.push_back(hzOf(melOf(8000) * i / (bins + 1)));
  std::vector<double> out;
  double peak = -1e9;
  for (int64_t t = 0; t < frames; ++t) {
    std::vector<double> power(nfft / 2 + 1);
    for (int64_t k = 0; k <= nfft / 2; ++k) {
      std::complex<double> s = 0;
      for (int64_t j = 0; j < nfft; ++j) {
        double w = 0.5 * (1 - std::cos(2 * M_PI * j / nfft));
        s +=
            padded[t * hop + j] * w * std::polar(1.0, -2 * M_PI * k * j / nfft);
      }
      power[k] = std::norm(s);
    }
    for (int64_t m = 0; m < bins; ++m) {
      double e = 0;
      for (int64_t k = 0; k <= nfft / 2; ++k) {
        double f = k * double(rate) / nfft;
        double up = (f - edges[m]) / (edges[m + 1] - edges[m]);
        double down = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1]);
        double w = std::max(0.0, std::min(up, down));
        e += w * 2 / (edges[m + 2] - edges[m]) * power[k];
      }
      double v = std::log10(std::max(e, 1e-10));
      peak = std::max(peak, v);
      out.push_back(v);
    }
  }
  for (double &v : out)
    v = (std::max(v, peak - 8) + 4) / 4;
  return out;
}

} // namespace

TEST(Audio, WavDecodesToMono) {
  MLLM_NEEDS_AUDIO();
  TempDir dir;
  std::vector<float> mono = tone(440, 0.25, 16000);
  std::vector<float> stereo;
  for (float s : mono) { // Left the tone, right half of it.
    stereo.push_back(s);
    stereo.push_back(s / 2);
  }
  std::string path = dir.path("t.wav");
  ASSERT_TRUE(writeSound(path, stereo, 16000, 2)) << "built without sndfile";
  auto info = probeAudio(path);
  ASSERT_TRUE(static_cast<bool>(info)) << llvm::toString(info.takeError());
  EXPECT_EQ(info->channels, 2);
  EXPECT_EQ(info->sampleRate, 16000);
  EXPECT_DOUBLE_EQ(info->seconds(), 0.25);
  auto samples = decodeAudio(path, 16000);
  ASSERT_TRUE(static_cast<bool>(samples));
  ASSERT_EQ(samples->size(), mono.size());
  for (size_t i = 0; i < mono.size(); ++i) // 16-bit PCM: 2^-15 per channel.
    ASSERT_NEAR((*samples)[i], 0.75f * mono[i], 1.0 / 16384) << i;
}

TEST(Audio, FlacResampledKeepsItsTone) {
  MLLM_NEEDS_AUDIO();
  TempDir dir;
  std::string path = dir.path("t.flac");
  ASSERT_TRUE(writeSound(path, tone(1000, 0.5, 44100), 44100, 1, true));
  auto samples = decodeAudio(path, 16000);
  ASSERT_TRUE(static_cast<bool>(samples))
      << llvm::toString(samples.takeError());
  EXPECT_NEAR(static_cast<double>(samples->size()), 8000.0, 2.0);
  // Skip the converter's edges; the tone keeps its frequency and level.
  std::vector<float> middle(samples->begin() + 1000, samples->begin() + 7000);
  EXPECT_NEAR(amplitudeAt(middle, 1000, 16000), 0.5, 0.01);
  EXPECT_LT(amplitudeAt(middle, 1100, 16000), 0.02);
  for (float s : *samples)
    ASSERT_LE(std::abs(s), 0.6f);
}

// A 32-bit float WAV may hold NaN, infinity or huge values, which make the
// step's loss NaN and read as a divergence of training: such a file is refused.
TEST(Audio, NonFiniteOrHugeSamplesAreAnError) {
  MLLM_NEEDS_AUDIO();
  TempDir dir;
  for (float bad :
       {std::nanf(""), std::numeric_limits<float>::infinity(), -1e20f}) {
    std::vector<float> samples(400, 0.25f);
    samples[123] = bad;
    // RIFF/WAVE, fmt chunk of format 3 (IEEE float), mono, 16 kHz.
    std::string wav;
    auto u32 = [&](uint32_t v) { wav.append(reinterpret_cast<char *>(&v), 4); };
    auto u16 = [&](uint16_t v) { wav.append(reinterpret_cast<char *>(&v), 2); };
    const uint32_t bytes = samples.size() * sizeof(float);
    wav += "RIFF";
    u32(4 + 8 + 16 + 8 + bytes);
    wav += "WAVEfmt ";
    u32(16);
    u16(3);
    u16(1);
    u32(16000);
    u32(16000 * 4);
    u16(4);
    u16(32);
    wav += "data";
    u32(bytes);
    wav.append(reinterpret_cast<const char *>(samples.data()), bytes);
    std::string path = dir.write("nan.wav", wav);
    auto decoded = decodeAudio(path, 16000);
    ASSERT_FALSE(static_cast<bool>(decoded));
    std::string error = llvm::toString(decoded.takeError());
    EXPECT_NE(error.find(std::isnan(bad)   ? "is NaN (frame 123)"
                         : std::isinf(bad) ? "is infinite (frame 123)"
                                           : "is -1.000000e+20, beyond"),
              std::string::npos)
        << error;
  }
}

TEST(Audio, UndecodableFileIsAnError) {
  TempDir dir;
  std::string path = dir.write("x.wav", "RIFF but not really a wave file");
  auto samples = decodeAudio(path, 16000);
  ASSERT_FALSE(static_cast<bool>(samples));
  EXPECT_NE(llvm::toString(samples.takeError()).find("x.wav"),
            std::string::npos);
}

TEST(MelScale, KnownPoints) {
  EXPECT_DOUBLE_EQ(hzToMel(1000, MelScale::Slaney), 15.0);
  EXPECT_DOUBLE_EQ(hzToMel(600, MelScale::Slaney), 9.0);
  EXPECT_NEAR(hzToMel(6400, MelScale::Slaney), 42.0, 1e-12);
  EXPECT_NEAR(hzToMel(700, MelScale::Htk), 2595 * std::log10(2.0), 1e-9);
  for (double hz : {0.0, 250.0, 999.0, 1000.0, 3000.0, 8000.0})
    for (MelScale s : {MelScale::Slaney, MelScale::Htk})
      EXPECT_NEAR(melToHz(hzToMel(hz, s), s), hz, 1e-9);
}

TEST(LogMel, PureTonePeaksAtItsMelBin) {
  MLLM_NEEDS_FFTW();
  const int64_t bins = 80, frames = 100;
  auto mel = LogMel::create(bins, LogMelOptions{});
  ASSERT_TRUE(static_cast<bool>(mel)) << llvm::toString(mel.takeError());
  std::vector<float> out(static_cast<size_t>(frames * bins));
  mel->compute(tone(1000, 1.0, 16000), frames, out.data());
  // The filter whose centre is nearest 1 kHz in mel: centres sit at
  // (m + 1) / 81 of mel(8 kHz).
  double step = melOf(8000) / (bins + 1);
  auto expected = static_cast<int64_t>(std::lround(melOf(1000) / step)) - 1;
  for (int64_t t = 5; t < frames - 5; ++t) {
    const float *row = out.data() + t * bins;
    EXPECT_EQ(std::max_element(row, row + bins) - row, expected) << t;
  }
  float hi = *std::max_element(out.begin(), out.end());
  float lo = *std::min_element(out.begin(), out.end());
  EXPECT_LE(hi - lo, 2.0f + 1e-6f); // 8 decades / 4
}

TEST(LogMel, MatchesAnIndependentReference) {
  MLLM_NEEDS_FFTW();
  const int64_t bins = 16, frames = 30;
  // A chirp-like mix with silence after it: the padding and the
  // dynamic-range floor both matter.
  std::vector<float> audio = tone(440, 0.2, 16000, 0.3);
  std::vector<float> other = tone(3100, 0.2, 16000, 0.1);
  for (size_t i = 0; i < audio.size(); ++i)
    audio[i] += other[i] * static_cast<float>(i) / audio.size();
  auto mel = LogMel::create(bins, LogMelOptions{});
  ASSERT_TRUE(static_cast<bool>(mel));
  std::vector<float> out(static_cast<size_t>(frames * bins));
  mel->compute(audio, frames, out.data());
  std::vector<double> ref = referenceLogMel(audio, frames, bins);
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    worst = std::max(worst, std::abs(ref[i] - out[i]));
  EXPECT_LT(worst, 1e-4);
  // The silent tail sits at the floor: (peak - 8 + 4) / 4.
  double peak = *std::max_element(ref.begin(), ref.end());
  EXPECT_NEAR(out.back(), peak - 2.0, 1e-4);
}

TEST(LogMel, FilterbankShapes) {
  LogMelOptions slaney;
  std::vector<float> bank = melFilterbank(80, 400, slaney);
  ASSERT_EQ(bank.size(), 80u * 201u);
  // Whisper's 80 filters over 201 bins: none is empty or negative.
  for (int m = 0; m < 80; ++m) {
    float sum = 0;
    for (int k = 0; k < 201; ++k) {
      ASSERT_GE(bank[m * 201 + k], 0.0f);
      sum += bank[m * 201 + k];
    }
    EXPECT_GT(sum, 0.0f) << m;
  }
  LogMelOptions htk;
  htk.scale = MelScale::Htk;
  std::vector<float> peaks = melFilterbank(10, 400, htk);
  for (int m = 0; m < 10; ++m)
    EXPECT_LE(*std::max_element(peaks.begin() + m * 201,
                                peaks.begin() + (m + 1) * 201),
              1.0f);
}
