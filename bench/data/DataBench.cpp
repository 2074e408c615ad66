//===- DataBench.cpp - samples/s of the data pipeline ---------------------===//
//
// Generates a data set of real files (JPEG photos-sized images, PNGs, WAV
// clips at 44.1 kHz, captions), opens it against a SigLIP + Whisper-sized
// geometry and reads one epoch through the prefetcher with 1..N worker
// threads, printing samples/s of decode + tokenise + pack: per second of
// wall time, and per second of one worker's busy time.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/data/Prefetch.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <jpeglib.h>
#include <png.h>
#include <sndfile.h>

using namespace mllm::runtime::data;
namespace cl = llvm::cl;

static cl::opt<int> numSamples("samples", cl::desc("samples in the data set"),
                               cl::init(96));
static cl::opt<int> maxThreads("threads", cl::desc("most worker threads"),
                               cl::init(2));
static cl::opt<ResampleQuality> resampleQuality(
    "resample", cl::desc("libsamplerate converter"),
    cl::values(clEnumValN(ResampleQuality::Best, "best", "SRC_SINC_BEST"),
               clEnumValN(ResampleQuality::Medium, "medium", "SRC_SINC_MEDIUM"),
               clEnumValN(ResampleQuality::Fastest, "fastest",
                          "SRC_SINC_FASTEST")),
    cl::init(ResampleQuality::Medium));
static cl::opt<int> audioEvery("audio-every",
                               cl::desc("every N-th sample has a clip"),
                               cl::init(4));

namespace {

std::string join(const std::string &dir, const std::string &name) {
  llvm::SmallString<128> p(dir);
  llvm::sys::path::append(p, name);
  return p.str().str();
}

/// A 640 x 480 photo-like gradient with a square, as JPEG (even i) or PNG.
void writeImage(const std::string &path, int i, bool jpeg) {
  const int w = 640, h = 480;
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      bool square = std::abs(x - 320) < 80 + i % 60 && std::abs(y - 240) < 80;
      uint8_t *p = &rgb[(y * w + x) * 3];
      p[0] = square ? 220 : static_cast<uint8_t>(x * 255 / w);
      p[1] = static_cast<uint8_t>((y * 255 / h + 13 * i) % 256);
      p[2] = square ? 30 : 128;
    }
  if (!jpeg) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = w;
    image.height = h;
    image.format = PNG_FORMAT_RGB;
    png_image_write_to_file(&image, path.c_str(), 0, rgb.data(), 0, nullptr);
    return;
  }
  std::FILE *f = std::fopen(path.c_str(), "wb");
  jpeg_compress_struct info;
  jpeg_error_mgr err;
  info.err = jpeg_std_error(&err);
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, f);
  info.image_width = w;
  info.image_height = h;
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, 90, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = rgb.data() + info.next_scanline * w * 3;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(f);
}

/// A 10 s two-tone clip at 44.1 kHz (resampled to 16 kHz when read).
void writeClip(const std::string &path, int i) {
  const int rate = 44100, n = rate * 10;
  std::vector<float> s(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t)
    s[t] = 0.3f * std::sin(2 * M_PI * (200 + 10 * i) * t / rate) +
           0.1f * std::sin(2 * M_PI * 1800 * t / rate);
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE *f = sf_open(path.c_str(), SFM_WRITE, &info);
  sf_writef_float(f, s.data(), n);
  sf_close(f);
}

/// SigLIP-so400m-sized vision (384 x 384, 729 tokens) and a Whisper-sized
/// audio encoder (one 30 s window of 3000 frames x 80 mels, 750 tokens
/// after merge 2), 4k-token sequences of 2 per microbatch.
DataGeometry geometry() {
  DataGeometry g;
  g.seqLen = 4096;
  g.sequences = 2;
  g.microbatches = 4;
  g.packing = 2;
  g.vocab = 32000;
  g.numModalities = 2;
  EncoderInput v;
  v.name = "vision";
  v.instance = "siglip_so400m";
  v.tokensPerItem = 729;
  v.height = v.width = 384;
  EncoderInput a;
  a.name = "audio";
  a.kind = MediaKind::Audio;
  a.modality = 1;
  a.tokensPerItem = 750;
  a.frames = 3000;
  a.melBins = 80;
  a.placement = mllm::kernels::ItemPlacement::Append;
  g.encoders = {v, a};
  return g;
}

} // namespace

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv, "data pipeline benchmark\n");
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::createUniqueDirectory("mllm-bench-data", dir)) {
    llvm::errs() << "cannot create a temporary directory\n";
    return 2;
  }
  std::string manifest;
  for (int i = 0; i < numSamples; ++i) {
    bool jpeg = i % 2 == 0;
    std::string image = "img" + std::to_string(i) + (jpeg ? ".jpg" : ".png");
    writeImage(join(dir.str().str(), image), i, jpeg);
    manifest += "{\"text\": \"Sample " + std::to_string(i) +
                ": a picture of a red square on a gradient <vision> with a "
                "caption long enough to look like one.\", \"vision\": \"" +
                image + "\"";
    if (audioEvery > 0 && i % audioEvery == 0) {
      std::string clip = "clip" + std::to_string(i) + ".wav";
      writeClip(join(dir.str().str(), clip), i);
      manifest += ", \"audio\": \"" + clip + "\"";
    }
    manifest += "}\n";
  }
  std::string path = join(dir.str().str(), "data.jsonl");
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    os << manifest;
  }

  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  DataOptions options;
  options.resample = resampleQuality;
  auto set = DataSet::open(path, geometry(), options);
  if (!set) {
    llvm::errs() << llvm::toString(set.takeError()) << "\n";
    return 1;
  }
  double openSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const DataGeometry &g = (*set)->geometry();
  int64_t batches = (*set)->batches().batchesInEpoch(0);
  llvm::outs() << llvm::formatv(
      "{0} samples ({1} JPEG/PNG 640x480 -> 384x384, {2} WAV 10 s 44.1 kHz "
      "-> 3000x80 log-mel), {3} microbatches of {4} x {5} tokens; open "
      "(parse, tokenise, probe headers): {6:f3} s\n\n",
      (*set)->size(), (*set)->size(),
      audioEvery > 0 ? (numSamples + audioEvery - 1) / audioEvery : 0, batches,
      g.sequences, g.seqLen, openSeconds);
  llvm::outs() << "| threads | samples/s (wall) | samples/s per busy thread "
                  "| consumer wait s |\n|---|---|---|---|\n";
  for (int threads = 1; threads <= maxThreads; ++threads) {
    Prefetcher reader(**set, 0, {}, threads, 2 * threads);
    int64_t samples = 0;
    for (int64_t b = 0; b < batches; ++b) {
      auto mb = reader.next();
      if (!mb) {
        llvm::errs() << llvm::toString(mb.takeError()) << "\n";
        return 1;
      }
      samples += mb->samples;
    }
    PrefetchStats s = reader.stats();
    llvm::outs() << llvm::formatv("| {0} | {1:f1} | {2:f1} | {3:f3} |\n",
                                  threads, samples / s.wallSeconds,
                                  s.samplesPerThreadSecond(), s.waitSeconds);
  }
  llvm::sys::fs::remove_directories(dir);
  return 0;
}
