//===- TestFiles.cpp - small media files the data tests draw --------------===//

#include "TestFiles.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>

#ifdef MLLM_DATA_HAVE_PNG
#include <png.h>
#endif
#ifdef MLLM_DATA_HAVE_JPEG
#include <jpeglib.h>
#endif
#ifdef MLLM_DATA_HAVE_SNDFILE
#include <sndfile.h>
#endif

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::test;

TempDir::TempDir() {
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::createUniqueDirectory("mllm-data-test", dir))
    std::abort();
  root = dir.str().str();
}

TempDir::~TempDir() { llvm::sys::fs::remove_directories(root); }

std::string TempDir::path(const std::string &name) const {
  llvm::SmallString<128> p(root);
  llvm::sys::path::append(p, name);
  return p.str().str();
}

std::string TempDir::write(const std::string &name,
                           const std::string &text) const {
  std::string p = path(name);
  std::error_code ec;
  llvm::raw_fd_ostream os(p, ec);
  os << text;
  return p;
}

static std::vector<uint8_t> pixels(int64_t width, int64_t height,
                                   int64_t channels, const PixelFn &pixel) {
  std::vector<uint8_t> out;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < channels; ++c)
        out.push_back(pixel(y, x, c));
  return out;
}

bool test::writePng(const std::string &path, int64_t width, int64_t height,
                    int64_t channels, const PixelFn &pixel) {
#ifdef MLLM_DATA_HAVE_PNG
  std::vector<uint8_t> data = pixels(width, height, channels, pixel);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  return png_image_write_to_file(&image, path.c_str(), 0, data.data(), 0,
                                 nullptr) != 0;
#else
  (void)path, (void)width, (void)height, (void)channels, (void)pixel;
  return false;
#endif
}

bool test::writeJpeg(const std::string &path, int64_t width, int64_t height,
                     int64_t channels, const PixelFn &pixel, int quality) {
#ifdef MLLM_DATA_HAVE_JPEG
  std::vector<uint8_t> data = pixels(width, height, channels, pixel);
  std::FILE *file = std::fopen(path.c_str(), "wb");
  if (!file)
    return false;
  jpeg_compress_struct info;
  jpeg_error_mgr err;
  info.err = jpeg_std_error(&err);
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, file);
  info.image_width = static_cast<JDIMENSION>(width);
  info.image_height = static_cast<JDIMENSION>(height);
  info.input_components = static_cast<int>(channels);
  info.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = data.data() + info.next_scanline * width * channels;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(file);
  return true;
#else
  (void)path, (void)width, (void)height, (void)channels, (void)pixel,
      (void)quality;
  return false;
#endif
}

bool test::writeSound(const std::string &path,
                      const std::vector<float> &samples, int64_t rate,
                      int64_t channels, bool flac) {
#ifdef MLLM_DATA_HAVE_SNDFILE
  SF_INFO info{};
  info.samplerate = static_cast<int>(rate);
  info.channels = static_cast<int>(channels);
  info.format = (flac ? SF_FORMAT_FLAC : SF_FORMAT_WAV) | SF_FORMAT_PCM_16;
  SNDFILE *f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f)
    return false;
  sf_count_t frames = static_cast<sf_count_t>(samples.size()) / channels;
  bool ok = sf_writef_float(f, samples.data(), frames) == frames;
  sf_close(f);
  return ok;
#else
  (void)path, (void)samples, (void)rate, (void)channels, (void)flac;
  return false;
#endif
}

std::vector<float> test::tone(double hz, double seconds, int64_t rate,
                              double amplitude) {
  auto n = static_cast<int64_t>(seconds * static_cast<double>(rate));
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(
        amplitude * std::sin(2 * M_PI * hz * static_cast<double>(i) /
                             static_cast<double>(rate)));
  return out;
}

DataGeometry test::smallGeometry() {
  DataGeometry g;
  g.seqLen = 64;
  g.sequences = 2;
  g.microbatches = 2;
  g.dp = 1;
  g.packing = 2;
  g.vocab = 300;
  g.numModalities = 2;
  EncoderInput vision;
  vision.name = "vision";
  vision.instance = "siglip_test";
  vision.kind = MediaKind::Image;
  vision.modality = 0;
  vision.maxItems = 2;
  vision.tokensPerItem = 4;
  vision.channels = 3;
  vision.height = 8;
  vision.width = 8;
  EncoderInput audio;
  audio.name = "audio";
  audio.kind = MediaKind::Audio;
  audio.modality = 1;
  audio.maxItems = 1;
  audio.tokensPerItem = 3;
  audio.placement = kernels::ItemPlacement::Append;
  audio.windows = 1;
  audio.frames = 20;
  audio.melBins = 8;
  g.encoders = {vision, audio};
  return g;
}
