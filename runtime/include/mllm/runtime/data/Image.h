//===- Image.h - image files to an encoder's pixel tensor -------*- C++ -*-===//
//
// PNG (libpng) and JPEG (libjpeg-turbo) files, told apart by their first
// bytes, decoded to 8-bit RGB or grey, resized bilinearly to the encoder's
// image size (aspect ratio not kept, as SigLIP's processor does) and
// normalised per channel as the encoder family was trained: x = (p / 255 -
// mean) / std. docs/data.md, "Images".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_IMAGE_H
#define MLLM_RUNTIME_DATA_IMAGE_H

#include "mllm/runtime/data/Geometry.h"

#include <array>
#include <cstdint>
#include <vector>

namespace mllm::runtime::data {

/// 8-bit pixels, rows top to bottom, channels interleaved (1 or 3).
struct Image {
  int64_t width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[(y * width + x) * channels + c];
  }
};

/// The size in a file's header, read without decoding the pixels.
struct ImageInfo {
  int64_t width = 0, height = 0;
};

/// Images larger than this (8192 x 8192) are refused from their header,
/// before their pixels are allocated.
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

/// `channels` is 1 (grey) or 3 (RGB); colour files are converted. Fails
/// with the decoder's message, or when the library was not built in.
llvm::Expected<Image> decodeImage(llvm::StringRef path, int64_t channels);
llvm::Expected<ImageInfo> probeImage(llvm::StringRef path);

/// Bilinear resize with pixel centres aligned (PyTorch's align_corners =
/// false, no antialiasing), to floats [channels, height, width] in 0..255.
std::vector<float> resizeBilinear(const Image &image, int64_t height,
                                  int64_t width);

/// Per-channel mean and std of the encoder family's training, applied to
/// pixels scaled to [0, 1].
struct ImageNorm {
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f}, std{0.5f, 0.5f, 0.5f};
  /// SigLIP, PaliGemma: 0.5 / 0.5, pixels to [-1, 1]. The default.
  static ImageNorm siglip() { return {}; }
  /// OpenAI CLIP (also Qwen2-VL): the CLIP training set's statistics.
  static ImageNorm clip() {
    return {{0.48145466f, 0.4578275f, 0.40821073f},
            {0.26862954f, 0.26130258f, 0.27577711f}};
  }
  /// ImageNet (InternViT, many ViTs).
  static ImageNorm imagenet() {
    return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  }
  /// By the encoder's instance name: `clip`/`qwen2` -> clip(), `intern` ->
  /// imagenet(), anything else -> siglip().
  static ImageNorm forInstance(llvm::StringRef instance);
};

/// The encoder's input for one image: resized, normalised, repeated over
/// the `temporal` frames (a still image is a clip of identical frames), as
/// [channels, temporal, height, width] at `out`.
void imageTensor(const Image &image, const EncoderInput &encoder,
                 const ImageNorm &norm, float *out);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_IMAGE_H
