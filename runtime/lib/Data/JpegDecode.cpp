//===- JpegDecode.cpp - JPEG through libjpeg(-turbo) ----------------------===//
//
// libjpeg reports a fatal error by calling error_exit, which must not
// return; ours longjmps back to the one C-style function that set the jump
// point. That function holds no object with a destructor between setjmp and
// the longjmp (the pixel buffer belongs to the caller), so nothing is
// skipped.
//
//===----------------------------------------------------------------------===//

#include "Codecs.h"

#include <csetjmp>
#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
// After jpeglib.h: the message codes (JWRN_JPEG_EOF).
#include <jerror.h>

using namespace mllm::runtime::data;

namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool sawEof = false, truncated = false;
};

void onError(j_common_ptr info) {
  auto *err = reinterpret_cast<ErrorManager *>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}

/// libjpeg's warnings went to stderr without the file's name. A file cut
/// inside its pixel data (libjpeg runs out of bytes, JWRN_JPEG_EOF, and
/// its entropy decoder then meets the end marker it inserts before the
/// scan is complete, JWRN_HIT_MARKER; the rest is filled in grey) is an
/// error, as PIL's "image file is truncated". One missing only its end
/// marker has every row and decodes; so do the other warnings (extraneous
/// bytes before a marker), silently, as PIL decodes them.
void onMessage(j_common_ptr info, int level) {
  auto *err = reinterpret_cast<ErrorManager *>(info->err);
  if (level >= 0)
    return; // Trace messages.
  ++info->err->num_warnings;
  if (info->err->msg_code == JWRN_JPEG_EOF && !err->sawEof) {
    err->sawEof = true;
    (*info->err->format_message)(info, err->message);
  }
  if (info->err->msg_code == JWRN_HIT_MARKER && err->sawEof)
    err->truncated = true;
}

/// Reads `file` into `image` (sized here, once the header is known), or
/// only its header when `headerOnly`. Returns false with `message` set.
bool readJpeg(std::FILE *file, int64_t channels, bool headerOnly, Image &image,
              char *message) {
  jpeg_decompress_struct info;
  ErrorManager err;
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = onError;
  err.base.emit_message = onMessage;
  if (setjmp(err.jump)) {
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file);
  jpeg_read_header(&info, TRUE);
  image.width = info.image_width;
  image.height = info.image_height;
  if (headerOnly) {
    jpeg_destroy_decompress(&info);
    return true;
  }
  info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  image.channels = info.output_components;
  // The buffer is sized before any further libjpeg call can longjmp.
  image.pixels.resize(
      static_cast<size_t>(image.width * image.height * image.channels));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row =
        image.pixels.data() + static_cast<size_t>(info.output_scanline) *
                                  image.width * image.channels;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (err.truncated) {
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    return false;
  }
  return true;
}

llvm::Expected<Image> read(llvm::StringRef path, int64_t channels,
                           bool headerOnly) {
  std::FILE *file = std::fopen(path.str().c_str(), "rb");
  if (!file)
    return detail::codecError("cannot open '" + path + "'");
  Image image;
  char message[JMSG_LENGTH_MAX] = {};
  bool ok = readJpeg(file, channels, headerOnly, image, message);
  std::fclose(file);
  if (!ok)
    return detail::codecError("cannot decode JPEG '" + path + "': " + message);
  if (!headerOnly && image.channels != channels)
    return detail::codecError("JPEG '" + path + "' gave " +
                              llvm::Twine(image.channels) + " channels");
  return image;
}

} // namespace

llvm::Expected<ImageInfo> detail::probeJpeg(llvm::StringRef path) {
  auto image = read(path, 3, true);
  if (!image)
    return image.takeError();
  return ImageInfo{image->width, image->height};
}

llvm::Expected<Image> detail::decodeJpeg(llvm::StringRef path,
                                         int64_t channels) {
  return read(path, channels, false);
}
