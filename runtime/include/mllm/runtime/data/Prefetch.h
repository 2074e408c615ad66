//===- Prefetch.h - decoding ahead of the step on worker threads -*- C++ -*-//
//
// One replica's microbatches in step order, (step, 0), (step, 1), ...,
// decoded by `threads` workers up to `depth` microbatches ahead of the
// consumer, handed out in order. The position of the next microbatch is a
// (step, microbatch) pair that a checkpoint saves; a Prefetcher started at
// it reads exactly the batches an uninterrupted one would have.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_PREFETCH_H
#define MLLM_RUNTIME_DATA_PREFETCH_H

#include "mllm/runtime/data/DataSet.h"

#include <condition_variable>
#include <thread>

namespace mllm::runtime::data {

struct DataPosition {
  int64_t step = 0, microbatch = 0;
  bool operator==(const DataPosition &o) const {
    return step == o.step && microbatch == o.microbatch;
  }
};

/// "step S microbatch M data F" (F: the data set's fingerprint, hex).
std::string formatPosition(const DataPosition &position, const DataSet &set);
/// Reads formatPosition's text; refuses another data set's position.
llvm::Expected<DataPosition> parsePosition(llvm::StringRef text,
                                           const DataSet &set);

struct PrefetchStats {
  int64_t batches = 0, samples = 0;
  double decodeSeconds = 0; ///< Summed over the workers.
  double waitSeconds = 0;   ///< The consumer blocked in next().
  double wallSeconds = 0;   ///< Since the prefetcher started.
  int threads = 0;
  /// Samples per second of one worker's busy time.
  double samplesPerThreadSecond() const {
    return decodeSeconds > 0 ? samples / decodeSeconds : 0;
  }
};

class Prefetcher {
public:
  Prefetcher(const DataSet &set, int64_t replica, DataPosition start,
             int threads, int64_t depth);
  ~Prefetcher();
  Prefetcher(const Prefetcher &) = delete;
  Prefetcher &operator=(const Prefetcher &) = delete;

  /// The microbatch at position(), then advances.
  llvm::Expected<Microbatch> next();
  /// Microbatch `mb` of `step`: from the queue when it is the next one,
  /// else the queue restarts there.
  llvm::Expected<Microbatch> get(int64_t step, int64_t mb);
  /// The position of the next microbatch next() returns.
  DataPosition position() const;
  /// Drops what was decoded ahead and continues at `position`.
  void seek(DataPosition position);
  PrefetchStats stats() const;

private:
  struct Slot;
  void work();
  DataPosition at(int64_t ticket) const;
  void stop();
  void start(DataPosition position);

  const DataSet &set;
  int64_t replica, depth;
  int threads;
  DataPosition origin;
  mutable std::mutex lock;
  std::condition_variable ready, space;
  /// Tickets count microbatches from `origin`; a seek starts a new
  /// generation and stale results are dropped.
  int64_t nextTicket = 0, consumed = 0, generation = 0;
  bool stopping = false;
  std::map<int64_t, std::unique_ptr<Slot>> done;
  std::vector<std::thread> workers;
  PrefetchStats totals;
  std::chrono::steady_clock::time_point started;
};

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_PREFETCH_H
