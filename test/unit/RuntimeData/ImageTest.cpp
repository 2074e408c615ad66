//===- ImageTest.cpp - PNG/JPEG decoding, resizing, normalisation ---------===//

#include "TestFiles.h"

#include "mllm/runtime/data/Image.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CRC.h"
#include "llvm/Support/MemoryBuffer.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace mllm::runtime::data;
using namespace mllm::runtime::data::test;

namespace {

/// A 6 x 4 pattern: red rises along x, green along y, blue constant.
uint8_t pattern(int64_t y, int64_t x, int64_t c) {
  return c == 0   ? static_cast<uint8_t>(40 * x)
         : c == 1 ? static_cast<uint8_t>(60 * y)
                  : 200;
}

} // namespace

TEST(Image, PngDecodesExactly) {
  MLLM_NEEDS_PNG();
  TempDir dir;
  std::string path = dir.path("p.png");
  ASSERT_TRUE(writePng(path, 6, 4, 3, pattern)) << "built without libpng";
  auto info = probeImage(path);
  ASSERT_TRUE(static_cast<bool>(info)) << llvm::toString(info.takeError());
  EXPECT_EQ(info->width, 6);
  EXPECT_EQ(info->height, 4);
  auto image = decodeImage(path, 3);
  ASSERT_TRUE(static_cast<bool>(image)) << llvm::toString(image.takeError());
  ASSERT_EQ(image->width, 6);
  ASSERT_EQ(image->height, 4);
  ASSERT_EQ(image->channels, 3);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 6; ++x)
      for (int64_t c = 0; c < 3; ++c)
        ASSERT_EQ(image->at(y, x, c), pattern(y, x, c)) << y << "," << x;
  // Grey output: libpng's sRGB-to-grey weights put pure blue darkest.
  auto grey = decodeImage(path, 1);
  ASSERT_TRUE(static_cast<bool>(grey));
  EXPECT_EQ(grey->channels, 1);
  EXPECT_EQ(grey->pixels.size(), 24u);
}

TEST(Image, JpegDecodesClose) {
  MLLM_NEEDS_JPEG();
  TempDir dir;
  std::string path = dir.path("p.jpg");
  // Smooth content: JPEG at quality 100 stays within a few levels.
  auto smooth = [](int64_t y, int64_t x, int64_t c) {
    return static_cast<uint8_t>(c == 0 ? 4 * x : c == 1 ? 4 * y : 128);
  };
  ASSERT_TRUE(writeJpeg(path, 32, 16, 3, smooth, 100))
      << "built without libjpeg";
  auto image = decodeImage(path, 3);
  ASSERT_TRUE(static_cast<bool>(image)) << llvm::toString(image.takeError());
  ASSERT_EQ(image->width, 32);
  ASSERT_EQ(image->height, 16);
  ASSERT_EQ(image->channels, 3);
  int worst = 0;
  for (int64_t y = 0; y < 16; ++y)
    for (int64_t x = 0; x < 32; ++x)
      for (int64_t c = 0; c < 3; ++c)
        worst = std::max(
            worst, std::abs(int(image->at(y, x, c)) - int(smooth(y, x, c))));
  EXPECT_LE(worst, 6);
  auto info = probeImage(path);
  ASSERT_TRUE(static_cast<bool>(info));
  EXPECT_EQ(info->width, 32);
  // A grey JPEG converts up to RGB with equal channels.
  std::string greyPath = dir.path("g.jpg");
  ASSERT_TRUE(writeJpeg(greyPath, 8, 8, 1,
                        [](int64_t, int64_t, int64_t) { return 77; }));
  auto rgb = decodeImage(greyPath, 3);
  ASSERT_TRUE(static_cast<bool>(rgb));
  EXPECT_EQ(rgb->at(3, 3, 0), rgb->at(3, 3, 2));
  EXPECT_NEAR(rgb->at(3, 3, 1), 77, 1);
}

TEST(Image, GarbageAndTruncatedFilesAreErrors) {
  MLLM_NEEDS_PNG();
  MLLM_NEEDS_JPEG();
  TempDir dir;
  std::string text = dir.write("not.png", "this is not an image at all");
  auto a = decodeImage(text, 3);
  ASSERT_FALSE(static_cast<bool>(a));
  EXPECT_NE(llvm::toString(a.takeError()).find("neither a PNG nor a JPEG"),
            std::string::npos);
  // A PNG signature followed by junk: libpng's own message comes back.
  std::string fake = dir.write("fake.png", std::string("\x89PNG\r\n\x1a\n", 8) +
                                               "junkjunkjunkjunk");
  auto b = decodeImage(fake, 3);
  ASSERT_FALSE(static_cast<bool>(b));
  EXPECT_NE(llvm::toString(b.takeError()).find("cannot decode PNG"),
            std::string::npos);
  std::string jpeg = dir.write("cut.jpg", "\xff\xd8\xff\xe0 truncated");
  auto c = decodeImage(jpeg, 3);
  ASSERT_FALSE(static_cast<bool>(c));
  EXPECT_NE(llvm::toString(c.takeError()).find("cannot decode JPEG"),
            std::string::npos);
}

// A JPEG cut in its scan data decodes in libjpeg with the rest grey and a
// warning on stderr; here it is an error naming the file (as PIL's
// "truncated"), so a data set counts it as a late failure.
TEST(Image, TruncatedJpegScanIsAnError) {
  MLLM_NEEDS_JPEG();
  TempDir dir;
  std::string whole = dir.path("whole.jpg");
  ASSERT_TRUE(writeJpeg(whole, 64, 64, 3, pattern));
  ASSERT_TRUE(static_cast<bool>(decodeImage(whole, 3)));
  auto bytes = llvm::MemoryBuffer::getFile(whole);
  ASSERT_TRUE(static_cast<bool>(bytes));
  std::string cut = dir.write(
      "cut.jpg",
      (*bytes)->getBuffer().take_front((*bytes)->getBufferSize() / 2).str());
  ASSERT_TRUE(static_cast<bool>(probeImage(cut))); // The header is whole.
  auto image = decodeImage(cut, 3);
  ASSERT_FALSE(static_cast<bool>(image));
  EXPECT_EQ(llvm::toString(image.takeError()),
            "cannot decode JPEG '" + cut + "': Premature end of JPEG file");
  // Without only its end marker (FF D9) every row is there: it decodes,
  // equal to the whole file.
  std::string noEnd =
      dir.write("no-end.jpg", (*bytes)->getBuffer().drop_back(2).str());
  auto a = decodeImage(whole, 3), b = decodeImage(noEnd, 3);
  ASSERT_TRUE(static_cast<bool>(b)) << llvm::toString(b.takeError());
  EXPECT_EQ(a->pixels, b->pixels);
}

// A PNG whose header claims 10^6 x 10^6 pixels (a 60-byte file) is refused
// from the header, by probe and decode alike, before 3 TB are allocated.
TEST(Image, HugeHeadersAreRefusedBeforeDecoding) {
  MLLM_NEEDS_PNG();
  TempDir dir;
  auto be32 = [](std::string &out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out += static_cast<char>((v >> shift) & 0xff);
  };
  std::string ihdr = "IHDR";
  be32(ihdr, 1000000);
  be32(ihdr, 1000000);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5); // 8-bit RGB
  // libpng reads up to the first IDAT: ten zero bytes in a stored zlib
  // block (Adler-32 0x000a0001), then IEND.
  std::string idat = "IDAT" + std::string("\x78\x01\x01\x0a\x00\xf5\xff", 7) +
                     std::string(10, '\0') + std::string("\x00\x0a\x00\x01", 4);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  for (const std::string &chunk : {ihdr, idat, std::string("IEND")}) {
    be32(png, static_cast<uint32_t>(chunk.size() - 4));
    png += chunk;
    be32(png, llvm::crc32(llvm::arrayRefFromStringRef(chunk)));
  }
  std::string path = dir.write("huge.png", png);
  for (bool decode : {false, true}) {
    std::string message = decode
                              ? llvm::toString(decodeImage(path, 3).takeError())
                              : llvm::toString(probeImage(path).takeError());
    EXPECT_NE(message.find("is 1000000 x 1000000 pixels; at most 67108864 "
                           "decode (resize it offline)"),
              std::string::npos)
        << message;
  }
  // The largest accepted size still probes.
  writePng(dir.path("wide.png"), 8192, 1, 1,
           [](int64_t, int64_t, int64_t) { return uint8_t(7); });
  llvm::Expected<ImageInfo> wide = probeImage(dir.path("wide.png"));
  ASSERT_TRUE(static_cast<bool>(wide)) << llvm::toString(wide.takeError());
  EXPECT_EQ(wide->width, 8192);
}

TEST(Resize, HalvingAveragesPixelPairs) {
  // Pixel centres aligned: output i samples input 2i + 0.5, the mean of
  // pixels 2i and 2i + 1 (in both directions: the mean of a 2 x 2 block).
  Image img;
  img.width = 4;
  img.height = 4;
  img.channels = 1;
  for (int v = 0; v < 16; ++v)
    img.pixels.push_back(static_cast<uint8_t>(v * 10));
  std::vector<float> out = resizeBilinear(img, 2, 2);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FLOAT_EQ(out[0], (0 + 10 + 40 + 50) / 4.0f);
  EXPECT_FLOAT_EQ(out[1], (20 + 30 + 60 + 70) / 4.0f);
  EXPECT_FLOAT_EQ(out[2], (80 + 90 + 120 + 130) / 4.0f);
  EXPECT_FLOAT_EQ(out[3], (100 + 110 + 140 + 150) / 4.0f);
}

TEST(Resize, UpscalingKeepsLinearRampsAndEdges) {
  // A ramp along x stays a ramp inside; the borders clamp to the edge
  // pixels; identity size is exact.
  Image img;
  img.width = 3;
  img.height = 1;
  img.channels = 1;
  img.pixels = {0, 90, 180};
  std::vector<float> out = resizeBilinear(img, 1, 6);
  // src = (i + 0.5) / 2 - 0.5 = -0.25 (clamped 0), 0.25, 0.75, 1.25, ...
  const float expect[6] = {0, 22.5f, 67.5f, 112.5f, 157.5f, 180};
  for (int i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(out[i], expect[i]) << i;
  std::vector<float> same = resizeBilinear(img, 1, 3);
  EXPECT_EQ(same, (std::vector<float>{0, 90, 180}));
}

TEST(ImageTensor, NormalisesAndRepeatsFrames) {
  Image img;
  img.width = 2;
  img.height = 2;
  img.channels = 3;
  // White, black, mid grey, pure red.
  img.pixels = {255, 255, 255, 0, 0, 0, 128, 128, 128, 255, 0, 0};
  EncoderInput in;
  in.channels = 3;
  in.temporal = 2;
  in.height = 2;
  in.width = 2;
  std::vector<float> out(static_cast<size_t>(in.floatsPerItem()));
  imageTensor(img, in, ImageNorm::siglip(), out.data());
  // SigLIP: [-1, 1]; layout [C, T, H, W].
  EXPECT_FLOAT_EQ(out[0], 1.0f);  // c0 t0 white
  EXPECT_FLOAT_EQ(out[1], -1.0f); // c0 t0 black
  EXPECT_NEAR(out[2], 128 / 127.5f - 1, 1e-6);
  EXPECT_FLOAT_EQ(out[3], 1.0f);          // red channel of red
  EXPECT_FLOAT_EQ(out[4], 1.0f);          // t1 repeats t0
  EXPECT_FLOAT_EQ(out[2 * 4 + 3], -1.0f); // green of red (c1, t0)
  for (float v : out) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 1.0f);
  }
  imageTensor(img, in, ImageNorm::clip(), out.data());
  EXPECT_NEAR(out[0], (1 - 0.48145466f) / 0.26862954f, 1e-5);
  EXPECT_NEAR(out[1], -0.48145466f / 0.26862954f, 1e-5);
  EXPECT_EQ(ImageNorm::forInstance("clip_vit_l14").mean,
            ImageNorm::clip().mean);
  EXPECT_EQ(ImageNorm::forInstance("siglip_so400m").mean,
            ImageNorm::siglip().mean);
  EXPECT_EQ(ImageNorm::forInstance("internvit_6b").std,
            ImageNorm::imagenet().std);
}
