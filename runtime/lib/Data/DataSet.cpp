//===- DataSet.cpp - microbatches of real data for a plan -----------------===//

#include "mllm/runtime/data/DataSet.h"

#include "mllm/runtime/data/Audio.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/xxhash.h"

#include <cstring>
#include <mutex>
#include <thread>

using namespace mllm::runtime::data;

namespace {

/// The log-mel settings of encoder `in`: the data options' with the plan's
/// hop.
LogMelOptions melOptions(const EncoderInput &in, const LogMelOptions &audio) {
  LogMelOptions o = audio;
  if (in.hopSeconds > 0)
    o.hopSeconds = in.hopSeconds;
  return o;
}

/// Seconds of audio one item holds: its windows of `frames` hops.
double itemSeconds(const EncoderInput &in, const LogMelOptions &audio) {
  return static_cast<double>(in.windows * in.frames) *
         melOptions(in, audio).hopSeconds;
}

uint64_t mixInto(uint64_t hash, uint64_t value) {
  return llvm::xxh3_64bits(llvm::ArrayRef<uint8_t>(
             reinterpret_cast<const uint8_t *>(&value), sizeof value)) ^
         (hash * 0x100000001b3ull);
}

} // namespace

llvm::Expected<std::unique_ptr<DataSet>>
DataSet::open(llvm::StringRef manifest, const DataGeometry &geometry,
              const DataOptions &options) {
  if (llvm::Error e = checkManifestFile(manifest))
    return std::move(e);
  auto buffer = llvm::MemoryBuffer::getFile(manifest, /*IsText=*/true);
  if (!buffer)
    return llvm::createStringError(buffer.getError(),
                                   "cannot read manifest '" + manifest +
                                       "': " + buffer.getError().message());
  std::unique_ptr<DataSet> set(new DataSet(geometry, options, manifest.str()));
  auto tokenizer = makeTokenizer(options.tokenizer, geometry.vocab);
  if (!tokenizer)
    return tokenizer.takeError();
  set->tok = std::move(*tokenizer);
  // Checked on several threads: each shape goes to its line's slot.
  std::mutex lock;
  std::map<int64_t, SampleShape> shapeOfLine;
  auto check = [&](const ManifestSample &sample) -> llvm::Error {
    auto shape = set->shapeOf(sample);
    if (!shape)
      return shape.takeError();
    std::lock_guard<std::mutex> hold(lock);
    shapeOfLine[sample.line] = std::move(*shape);
    return llvm::Error::success();
  };
  int threads =
      options.openThreads > 0
          ? options.openThreads
          : static_cast<int>(std::min(
                8u, std::max(1u, std::thread::hardware_concurrency())));
  auto all = parseManifest((*buffer)->getBuffer(), manifest, geometry,
                           set->found, check, threads);
  if (!all)
    return all.takeError();
  set->samples = std::move(*all);
  if (set->samples.empty()) {
    // The lines themselves, as a run that trains reports them: the counts
    // alone do not say what to fix.
    std::string message = manifest.str() + ": no usable sample";
    if (set->found.total())
      message += " (" + set->found.summary() + ")";
    for (const std::string &e : set->found.examples())
      message += "\n  " + e;
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  }
  std::vector<SampleShape> shapes;
  for (const ManifestSample &sample : set->samples)
    shapes.push_back(std::move(shapeOfLine[sample.line]));
  set->stream = std::make_unique<BatchStream>(std::move(shapes), geometry,
                                              options.pack, options.seed);

  uint64_t h = llvm::xxh3_64bits((*buffer)->getBuffer());
  for (int64_t v :
       {geometry.seqLen, geometry.sequences, geometry.microbatches, geometry.dp,
        static_cast<int64_t>(options.seed), options.pack.openSequences,
        options.pack.maxSamples, options.tokenizer.byteOffset,
        int64_t(options.tokenizer.addEos)})
    h = mixInto(h, static_cast<uint64_t>(v));
  // The model by its content: nodes may keep copies under other paths.
  std::string model = options.tokenizer.sentencePieceModel;
  if (!model.empty())
    if (auto file = llvm::MemoryBuffer::getFile(model))
      model = (*file)->getBuffer().str();
  h = mixInto(h, llvm::xxh3_64bits(model));
  set->print = h;
  return std::move(set);
}

llvm::Expected<SampleShape>
DataSet::shapeOf(const ManifestSample &sample) const {
  auto layout = layoutSample(sample, geo, *tok, opts.tokenizer.addEos);
  if (!layout)
    return layout.takeError();
  SampleShape shape;
  shape.tokens = layout->tokens;
  shape.items = layout->itemCount;
  if (!fitsSequence(shape, geo))
    return problem(Problem::TooLong, llvm::Twine(shape.tokens) +
                                         " tokens; a sequence holds " +
                                         llvm::Twine(geo.seqLen));
  const SampleLayout *one = &*layout;
  shape.counted = buildSequence(one, geo, shape.tokens).counted;
  if (!opts.probeMedia)
    return shape;
  for (size_t e = 0; e < geo.encoders.size(); ++e)
    for (const std::string &path : sample.media[e]) {
      const EncoderInput &in = geo.encoders[e];
      if (in.kind == MediaKind::Image) {
        if (auto info = probeImage(path); !info)
          return problem(Problem::UndecodableMedia,
                         llvm::toString(info.takeError()));
        continue;
      }
      auto info = probeAudio(path);
      if (!info)
        return problem(Problem::UndecodableMedia,
                       llvm::toString(info.takeError()));
      // The rate is in the header: refused here, not at every read.
      if (llvm::Error e =
              checkResampling(info->sampleRate, opts.audio.sampleRate))
        return problem(Problem::UndecodableMedia,
                       "'" + path + "': " + llvm::toString(std::move(e)));
      double limit = itemSeconds(in, opts.audio);
      if (info->seconds() > limit)
        return problem(Problem::AudioTooLong,
                       llvm::formatv("'{0}' lasts {1:f2} s; an item of '{2}' "
                                     "holds {3} window(s), {4:f2} s",
                                     path, info->seconds(), in.name, in.windows,
                                     limit)
                           .str());
    }
  return shape;
}

llvm::Error DataSet::decodeItem(size_t e, llvm::StringRef path, LogMel *mel,
                                float *out) const {
  const EncoderInput &in = geo.encoders[e];
  if (in.kind == MediaKind::Image) {
    auto image = decodeImage(path, in.channels);
    if (!image)
      return image.takeError();
    auto norm = opts.imageNorm.find(in.name);
    imageTensor(*image, in,
                norm != opts.imageNorm.end()
                    ? norm->second
                    : ImageNorm::forInstance(in.instance),
                out);
    return llvm::Error::success();
  }
  auto samples = decodeAudio(path, opts.audio.sampleRate, opts.resample);
  if (!samples)
    return samples.takeError();
  int64_t frames = in.windows * in.frames;
  const int64_t hop = melOptions(in, opts.audio).hopSamples();
  int64_t limit = frames * hop;
  // The header check passed the clip's duration; the resampler may still
  // round it up by a few samples. Up to one hop over is that rounding and
  // is dropped; more is a clip that changed since open().
  if (static_cast<int64_t>(samples->size()) > limit + hop)
    return problem(Problem::AudioTooLong,
                   "'" + path + "' has " + llvm::Twine(samples->size()) +
                       " samples; an item holds " + llvm::Twine(limit));
  if (static_cast<int64_t>(samples->size()) > limit)
    samples->resize(static_cast<size_t>(limit));
  mel->compute(*samples, frames, out);
  return llvm::Error::success();
}

llvm::Expected<Microbatch> DataSet::microbatch(int64_t step, int64_t replica,
                                               int64_t mb) const {
  return microbatchAt(locate(step, replica, mb));
}

llvm::Expected<Microbatch> DataSet::microbatchAt(BatchRef ref) const {
  Microbatch out;
  out.where = ref;
  std::vector<std::vector<int64_t>> groups = stream->sequences(ref);
  // Per sequence, the global sample indices of its samples.
  for (const std::vector<int64_t> &group : groups) {
    std::vector<SampleLayout> layouts;
    for (int64_t s : group) {
      auto layout = layoutSample(samples[s], geo, *tok, opts.tokenizer.addEos);
      if (!layout)
        return layout.takeError(); // Laid out at open(): cannot fail here.
      layouts.push_back(std::move(*layout));
      out.lines.push_back(samples[s].line);
    }
    std::vector<const SampleLayout *> ptrs;
    for (const SampleLayout &l : layouts)
      ptrs.push_back(&l);
    out.sequences.push_back(buildSequence(ptrs, geo, geo.seqLen));
    out.samples += static_cast<int64_t>(group.size());
  }

  // (sequence, sample) pairs masked after a late failure.
  std::set<std::pair<size_t, int64_t>> masked;
  for (size_t e = 0; e < geo.encoders.size(); ++e) {
    const EncoderInput &in = geo.encoders[e];
    int64_t n = 0;
    for (const PackedSequence &seq : out.sequences)
      n += static_cast<int64_t>(seq.items[e].size());
    if (n == 0)
      continue;
    std::optional<LogMel> mel;
    if (in.kind == MediaKind::Audio) {
      auto made = LogMel::create(in.melBins, melOptions(in, opts.audio));
      if (!made)
        return made.takeError();
      mel = std::move(*made);
    }
    std::vector<float> &media = out.media[in.name];
    const int64_t per = in.floatsPerItem();
    media.assign(static_cast<size_t>(n * per), 0.0f);
    out.items[in.name] = n;
    int64_t k = 0;
    for (size_t b = 0; b < out.sequences.size(); ++b) {
      PackedSequence &seq = out.sequences[b];
      for (const ItemSlot &slot : seq.items[e]) {
        const ManifestSample &sample = samples[groups[b][slot.sample]];
        float *dst = media.data() + (k++) * per;
        llvm::Error err = decodeItem(e, sample.media[e][slot.index],
                                     mel ? &*mel : nullptr, dst);
        if (!err)
          continue;
        std::string message =
            found.fileName() + ":" + std::to_string(sample.line) +
            ": undecodable media: " + llvm::toString(std::move(err));
        if (opts.strict)
          return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                         message);
        {
          std::lock_guard<std::mutex> lock(lateMutex);
          if (lateLines.insert(sample.line).second &&
              lateExamples.size() < kMaxLateExamples)
            lateExamples.push_back(std::move(message));
        }
        // The layout stays; the sample no longer teaches anything. A
        // sample with several bad items is one failed sample (one read).
        std::fill(dst, dst + per, 0.0f);
        if (!masked.insert({b, slot.sample}).second)
          continue;
        for (const kernels::LayoutSpan &span : seq.spans)
          if (span.sample == slot.sample)
            std::fill(seq.targets.begin() + span.start,
                      seq.targets.begin() + span.start + span.length,
                      kIgnoreTarget);
        ++out.failedSamples;
        ++failed;
      }
    }
  }

  for (PackedSequence &seq : out.sequences) {
    seq.counted = 0;
    for (int64_t t : seq.targets)
      seq.counted += t != kIgnoreTarget;
    out.countedTokens += seq.counted;
    out.tokenIds.insert(out.tokenIds.end(), seq.tokenIds.begin(),
                        seq.tokenIds.end());
    out.targets.insert(out.targets.end(), seq.targets.begin(),
                       seq.targets.end());
  }
  decoded += out.samples;
  return out;
}

int64_t DataSet::lateFailedSamples() const {
  std::lock_guard<std::mutex> lock(lateMutex);
  return static_cast<int64_t>(lateLines.size());
}

std::vector<std::string> DataSet::lateFailureExamples() const {
  std::lock_guard<std::mutex> lock(lateMutex);
  return lateExamples;
}

int64_t DataSet::countedTokens(int64_t step) const {
  int64_t n = 0;
  for (int64_t r = 0; r < geo.dp; ++r)
    for (int64_t m = 0; m < geo.microbatches; ++m)
      n += stream->countedTokens(locate(step, r, m));
  return n;
}

void mllm::runtime::data::padToCapacity(Microbatch &batch,
                                        const DataGeometry &geometry) {
  for (size_t e = 0; e < geometry.encoders.size(); ++e) {
    const EncoderInput &in = geometry.encoders[e];
    int64_t items = geometry.sequences * geometry.itemCapacity(e);
    batch.media[in.name].resize(static_cast<size_t>(items * in.floatsPerItem()),
                                0.0f);
    batch.items.emplace(in.name, 0);
  }
}
