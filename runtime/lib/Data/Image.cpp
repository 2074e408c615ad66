//===- Image.cpp - image files to an encoder's pixel tensor ---------------===//

#include "Codecs.h"

#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>
#include <cmath>
#include <fstream>

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::detail;

namespace {

enum class Format { Png, Jpeg, Unknown };

/// The format by the file's signature, not its name: a `.png` that is a
/// JPEG still decodes.
Format sniff(llvm::StringRef path, std::string &why) {
  std::ifstream in(path.str(), std::ios::binary);
  if (!in) {
    why = "cannot open '" + path.str() + "'";
    return Format::Unknown;
  }
  unsigned char magic[8] = {};
  in.read(reinterpret_cast<char *>(magic), sizeof magic);
  static const unsigned char png[8] = {0x89, 'P',  'N',  'G',
                                       '\r', '\n', 0x1a, '\n'};
  if (in.gcount() == 8 && std::equal(magic, magic + 8, png))
    return Format::Png;
  if (in.gcount() >= 3 && magic[0] == 0xff && magic[1] == 0xd8 &&
      magic[2] == 0xff)
    return Format::Jpeg;
  why = "'" + path.str() + "' is neither a PNG nor a JPEG file";
  return Format::Unknown;
}

[[maybe_unused]] llvm::Error missing(llvm::StringRef path, const char *what,
                                     const char *package) {
  return codecError("cannot decode '" + path + "': built without " + what +
                    " (apt-get install " + package + " and rebuild)");
}

/// A header's size checked before the decoder allocates its pixels: a
/// 100-byte file may claim 10^12 of them.
llvm::Expected<ImageInfo> checkedSize(llvm::StringRef path,
                                      llvm::Expected<ImageInfo> info) {
  if (!info)
    return info.takeError();
  if (info->width > 0 && info->height > kMaxImagePixels / info->width)
    return codecError("'" + path + "' is " + llvm::Twine(info->width) + " x " +
                      llvm::Twine(info->height) + " pixels; at most " +
                      llvm::Twine(kMaxImagePixels) +
                      " decode (resize it offline)");
  return info;
}

} // namespace

llvm::Expected<Image> mllm::runtime::data::decodeImage(llvm::StringRef path,
                                                       int64_t channels) {
  if (channels != 1 && channels != 3)
    return codecError("images decode to 1 or 3 channels, not " +
                      llvm::Twine(channels));
  if (llvm::Expected<ImageInfo> info = probeImage(path); !info)
    return info.takeError();
  std::string why;
  switch (sniff(path, why)) {
  case Format::Png:
#ifdef MLLM_DATA_HAVE_PNG
    return decodePng(path, channels);
#else
    return missing(path, "libpng", "libpng-dev");
#endif
  case Format::Jpeg:
#ifdef MLLM_DATA_HAVE_JPEG
    return decodeJpeg(path, channels);
#else
    return missing(path, "libjpeg", "libjpeg62-turbo-dev");
#endif
  case Format::Unknown:
    break;
  }
  return codecError(why);
}

llvm::Expected<ImageInfo>
mllm::runtime::data::probeImage(llvm::StringRef path) {
  std::string why;
  switch (sniff(path, why)) {
  case Format::Png:
#ifdef MLLM_DATA_HAVE_PNG
    return checkedSize(path, probePng(path));
#else
    return missing(path, "libpng", "libpng-dev");
#endif
  case Format::Jpeg:
#ifdef MLLM_DATA_HAVE_JPEG
    return checkedSize(path, probeJpeg(path));
#else
    return missing(path, "libjpeg", "libjpeg62-turbo-dev");
#endif
  case Format::Unknown:
    break;
  }
  return codecError(why);
}

std::vector<float> mllm::runtime::data::resizeBilinear(const Image &image,
                                                       int64_t height,
                                                       int64_t width) {
  const int64_t C = image.channels, H = image.height, W = image.width;
  std::vector<float> out(static_cast<size_t>(C * height * width));
  // Source coordinate of output pixel i: (i + 0.5) * in / out - 0.5,
  // clamped at the borders; the two neighbours and the weight per output
  // column are computed once.
  auto axis = [](int64_t in, int64_t n, std::vector<int64_t> &lo,
                 std::vector<int64_t> &hi, std::vector<float> &frac) {
    double scale = static_cast<double>(in) / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      double src = std::max(0.0, (static_cast<double>(i) + 0.5) * scale - 0.5);
      auto l = std::min<int64_t>(static_cast<int64_t>(src), in - 1);
      lo.push_back(l);
      hi.push_back(std::min<int64_t>(l + 1, in - 1));
      frac.push_back(static_cast<float>(src - static_cast<double>(l)));
    }
  };
  std::vector<int64_t> y0, y1, x0, x1;
  std::vector<float> fy, fx;
  axis(H, height, y0, y1, fy);
  axis(W, width, x0, x1, fx);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < C; ++c) {
        float top = image.at(y0[y], x0[x], c) * (1 - fx[x]) +
                    image.at(y0[y], x1[x], c) * fx[x];
        float bottom = image.at(y1[y], x0[x], c) * (1 - fx[x]) +
                       image.at(y1[y], x1[x], c) * fx[x];
        out[(c * height + y) * width + x] = top * (1 - fy[y]) + bottom * fy[y];
      }
  return out;
}

ImageNorm ImageNorm::forInstance(llvm::StringRef instance) {
  std::string name = instance.lower();
  llvm::StringRef n(name);
  if (n.contains("clip") || n.contains("qwen2"))
    return clip();
  if (n.contains("intern"))
    return imagenet();
  return siglip();
}

void mllm::runtime::data::imageTensor(const Image &image,
                                      const EncoderInput &encoder,
                                      const ImageNorm &norm, float *out) {
  const int64_t C = encoder.channels, T = encoder.temporal;
  const int64_t plane = encoder.height * encoder.width;
  std::vector<float> resized =
      resizeBilinear(image, encoder.height, encoder.width);
  for (int64_t c = 0; c < C; ++c) {
    // A grey encoder's one channel takes the grey statistics of the first.
    float mean = norm.mean[c], inv = 1.0f / (255.0f * norm.std[c]);
    float shift = mean / norm.std[c];
    const float *src = resized.data() + c * plane;
    for (int64_t t = 0; t < T; ++t) {
      float *dst = out + (c * T + t) * plane;
      for (int64_t i = 0; i < plane; ++i)
        dst[i] = src[i] * inv - shift;
    }
  }
}
