//===- Codecs.h - the library wrappers behind Image.h and Audio.h ---------===//
//
// Each is defined in its own file, compiled only when its library was found
// (MLLM_DATA_HAVE_<LIB>); Image.cpp and Audio.cpp dispatch to them and say
// which package is missing otherwise.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_CODECS_H
#define MLLM_RUNTIME_DATA_CODECS_H

#include "mllm/runtime/data/Audio.h"
#include "mllm/runtime/data/Image.h"

namespace mllm::runtime::data::detail {

llvm::Expected<Image> decodePng(llvm::StringRef path, int64_t channels);
llvm::Expected<ImageInfo> probePng(llvm::StringRef path);
llvm::Expected<Image> decodeJpeg(llvm::StringRef path, int64_t channels);
llvm::Expected<ImageInfo> probeJpeg(llvm::StringRef path);

/// Interleaved float samples in [-1, 1] and the file's format.
llvm::Expected<std::vector<float>> readSoundFile(llvm::StringRef path,
                                                 AudioInfo &info);
llvm::Expected<AudioInfo> probeSoundFile(llvm::StringRef path);
llvm::Expected<std::vector<float>> resampleMono(llvm::ArrayRef<float> in,
                                                int64_t from, int64_t to,
                                                ResampleQuality quality);

/// |FFT|^2 of real frames of one size: bins 0..size/2.
class PowerSpectrum {
public:
  virtual ~PowerSpectrum();
  /// `in` holds size() samples, `out` size() / 2 + 1 powers.
  virtual void power(const double *in, double *out) = 0;
};
llvm::Expected<std::unique_ptr<PowerSpectrum>> makePowerSpectrum(int64_t size);

inline llvm::Error codecError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace mllm::runtime::data::detail

#endif // MLLM_RUNTIME_DATA_CODECS_H
