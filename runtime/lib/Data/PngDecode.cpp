//===- PngDecode.cpp - PNG through libpng's simplified API ----------------===//
//
// The simplified API converts every PNG flavour (palette, grey, 16-bit,
// alpha, gamma) to the 8-bit format asked for and handles libpng's errors
// internally, so no longjmp crosses our frames. Alpha is composited onto
// black (the zeroed buffer).
//
//===----------------------------------------------------------------------===//

#include "Codecs.h"

#include <png.h>

#include <cstring>

using namespace mllm::runtime::data;

namespace {

struct PngReader {
  png_image image;
  PngReader() {
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
  }
  ~PngReader() { png_image_free(&image); }
};

llvm::Error pngError(llvm::StringRef path, const png_image &image) {
  return detail::codecError("cannot decode PNG '" + path +
                            "': " + image.message);
}

} // namespace

llvm::Expected<ImageInfo> detail::probePng(llvm::StringRef path) {
  PngReader reader;
  if (!png_image_begin_read_from_file(&reader.image, path.str().c_str()))
    return pngError(path, reader.image);
  return ImageInfo{reader.image.width, reader.image.height};
}

llvm::Expected<Image> detail::decodePng(llvm::StringRef path,
                                        int64_t channels) {
  PngReader reader;
  if (!png_image_begin_read_from_file(&reader.image, path.str().c_str()))
    return pngError(path, reader.image);
  reader.image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Image out;
  out.width = reader.image.width;
  out.height = reader.image.height;
  out.channels = channels;
  out.pixels.assign(PNG_IMAGE_SIZE(reader.image), 0);
  if (!png_image_finish_read(&reader.image, nullptr, out.pixels.data(), 0,
                             nullptr))
    return pngError(path, reader.image);
  if (out.width <= 0 || out.height <= 0)
    return detail::codecError("PNG '" + path + "' has no pixels");
  return out;
}
