//===- DataSet.h - microbatches of real data for a plan ---------*- C++ -*-===//
//
// The data pipeline's entry point. open() reads the manifest, tokenises
// every sample, reads every media file's header and sets aside what cannot
// be used (counted by Problem, or the first one in strict mode); the
// usable samples' shapes then fix the whole stream of packed microbatches
// (Stream.h). microbatch() decodes one of them: per sequence its layout
// (words, segments, positions, spans), token ids and targets, and per
// encoder the media of its items in item order. It is const and may run on
// several threads at once (Prefetch.h does).
//
// A file that passed the header check but fails to decode later is zeroed
// and its sample's targets masked (counted in failedSamples, an error in
// strict mode), so the batch keeps the layout every replica planned.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_DATASET_H
#define MLLM_RUNTIME_DATA_DATASET_H

#include "mllm/runtime/data/Audio.h"
#include "mllm/runtime/data/Image.h"
#include "mllm/runtime/data/LogMel.h"
#include "mllm/runtime/data/Sequence.h"
#include "mllm/runtime/data/Stream.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>

namespace mllm::runtime::data {

struct DataOptions {
  /// Stop at the first problem (with `file:line`), instead of skipping.
  bool strict = false;
  /// The shuffle's seed (each epoch reshuffles with (seed, epoch)).
  uint64_t seed = 0;
  TokenizerOptions tokenizer;
  /// Per encoder name; an encoder not named here uses
  /// ImageNorm::forInstance(its instance).
  std::map<std::string, ImageNorm> imageNorm;
  /// Sample rate, window, hop and mel scale of every audio encoder.
  LogMelOptions audio;
  /// The converter for audio files not at audio.sampleRate.
  ResampleQuality resample = ResampleQuality::Medium;
  PackOptions pack;
  /// Read every media file's header at open() (finds undecodable files and
  /// too-long audio before training; costs one open per file).
  bool probeMedia = true;
  /// Threads that parse and check the manifest at open() (the header reads
  /// are I/O); 0: the machine's hardware threads, at most 8.
  int openThreads = 0;
};

/// One microbatch, as the executor's MicrobatchData wants it plus the
/// layout of each of its sequences.
struct Microbatch {
  std::vector<PackedSequence> sequences; ///< microbatch_size of them.
  /// [sequences x seq_len], the sequences' token ids and targets in order.
  std::vector<int64_t> tokenIds, targets;
  /// Per encoder with items in this microbatch: [items, ...floatsPerItem],
  /// items in order: sequences, then PackedSequence::items.
  std::map<std::string, std::vector<float>> media;
  std::map<std::string, int64_t> items; ///< Items per encoder.
  int64_t countedTokens = 0;            ///< Targets that are not -100.
  int64_t samples = 0;
  int64_t failedSamples = 0; ///< Masked after a late decode failure.
  BatchRef where;
  std::vector<int64_t> lines; ///< Manifest lines of its samples, in order.
};

/// Grows every encoder's media to the plan's static shape, microbatch_size
/// x DataGeometry::itemCapacity items (zeros after the present ones; an
/// encoder with no items gets an all-zero tensor), for an executor whose
/// encoder runs on the plan's fixed item count. Microbatch::items keeps the
/// real counts; the padding items have no slot in any sequence, so their
/// tokens go nowhere.
void padToCapacity(Microbatch &batch, const DataGeometry &geometry);

class DataSet {
public:
  static llvm::Expected<std::unique_ptr<DataSet>>
  open(llvm::StringRef manifest, const DataGeometry &geometry,
       const DataOptions &options);

  /// Microbatch `mb` (0-based) of replica `replica` in step `step`.
  llvm::Expected<Microbatch> microbatch(int64_t step, int64_t replica,
                                        int64_t mb) const;
  llvm::Expected<Microbatch> microbatchAt(BatchRef ref) const;

  /// Tokens with a target in all dp x microbatches of `step`, from the
  /// packing alone: the loss scale's denominator, the same on every rank.
  int64_t countedTokens(int64_t step) const;
  BatchRef locate(int64_t step, int64_t replica, int64_t mb) const {
    return stream->locate(BatchStream::streamIndex(geo, step, replica, mb));
  }

  const DataGeometry &geometry() const { return geo; }
  const Problems &problems() const { return found; }
  const Tokenizer &tokenizer() const { return *tok; }
  const BatchStream &batches() const { return *stream; }
  int64_t size() const { return static_cast<int64_t>(samples.size()); }
  const ManifestSample &sample(int64_t i) const { return samples[i]; }
  /// Hash of the manifest's bytes and of every option that changes the
  /// stream: a saved position is refused on different data.
  uint64_t fingerprint() const { return print; }
  /// Samples decoded, and those masked after a late failure, so far.
  int64_t decodedSamples() const { return decoded.load(); }
  int64_t lateFailures() const { return failed.load(); }
  /// Distinct samples (manifest lines) among lateFailures(): a sample read
  /// again in a later epoch fails again.
  int64_t lateFailedSamples() const;
  /// The first kMaxLateExamples samples that failed late, in the order they
  /// did: `file:line: undecodable media: why`.
  std::vector<std::string> lateFailureExamples() const;
  static constexpr size_t kMaxLateExamples = 5;

private:
  DataSet(const DataGeometry &g, const DataOptions &o, std::string file)
      : geo(g), opts(o), found(std::move(file), o.strict) {}
  /// The shape of a parsed sample, or its Problem (bad marker, too long,
  /// undecodable header, audio too long).
  llvm::Expected<SampleShape> shapeOf(const ManifestSample &sample) const;
  /// Decodes one item into `out` (floatsPerItem floats).
  llvm::Error decodeItem(size_t encoder, llvm::StringRef path, LogMel *mel,
                         float *out) const;

  DataGeometry geo;
  DataOptions opts;
  Problems found;
  std::unique_ptr<Tokenizer> tok;
  std::vector<ManifestSample> samples; ///< The usable ones.
  std::unique_ptr<BatchStream> stream;
  uint64_t print = 0;
  mutable std::atomic<int64_t> decoded{0}, failed{0};
  mutable std::mutex lateMutex; ///< Prefetch threads decode at once.
  mutable std::vector<std::string> lateExamples;
  mutable std::set<int64_t> lateLines;
};

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_DATASET_H
