//===- Resample.cpp - sample-rate conversion through libsamplerate --------===//

#include "Codecs.h"

#include <samplerate.h>

#include <cmath>

using namespace mllm::runtime::data;

llvm::Expected<std::vector<float>>
detail::resampleMono(llvm::ArrayRef<float> in, int64_t from, int64_t to,
                     ResampleQuality quality) {
  double ratio = static_cast<double>(to) / static_cast<double>(from);
  auto expected =
      static_cast<int64_t>(std::ceil(static_cast<double>(in.size()) * ratio));
  std::vector<float> out(static_cast<size_t>(expected) + 16);
  SRC_DATA d{};
  d.data_in = in.data();
  d.input_frames = static_cast<long>(in.size());
  d.data_out = out.data();
  d.output_frames = static_cast<long>(out.size());
  d.src_ratio = ratio;
  int converter = quality == ResampleQuality::Best     ? SRC_SINC_BEST_QUALITY
                  : quality == ResampleQuality::Medium ? SRC_SINC_MEDIUM_QUALITY
                                                       : SRC_SINC_FASTEST;
  if (int err = src_simple(&d, converter, 1))
    return detail::codecError(llvm::Twine("resampling failed: ") +
                              src_strerror(err));
  out.resize(static_cast<size_t>(d.output_frames_gen));
  return out;
}
