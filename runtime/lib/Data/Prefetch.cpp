//===- Prefetch.cpp - decoding ahead of the step on worker threads --------===//

#include "mllm/runtime/data/Prefetch.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm::runtime::data;
using Clock = std::chrono::steady_clock;

static double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string mllm::runtime::data::formatPosition(const DataPosition &p,
                                                const DataSet &set) {
  return llvm::formatv("step {0} microbatch {1} data {2:x-16}", p.step,
                       p.microbatch, set.fingerprint())
      .str();
}

llvm::Expected<DataPosition>
mllm::runtime::data::parsePosition(llvm::StringRef text, const DataSet &set) {
  llvm::SmallVector<llvm::StringRef, 6> words;
  text.trim().split(words, ' ', -1, false);
  DataPosition p;
  uint64_t print = 0;
  if (words.size() != 6 || words[0] != "step" || words[2] != "microbatch" ||
      words[4] != "data" || words[1].getAsInteger(10, p.step) ||
      words[3].getAsInteger(10, p.microbatch) ||
      words[5].getAsInteger(16, print) || p.step < 0 || p.microbatch < 0 ||
      p.microbatch >= set.geometry().microbatches)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "bad data position '" + text + "'");
  if (print != set.fingerprint())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the data position was saved for other data (fingerprint " + words[5] +
            ", this data set " +
            llvm::formatv("{0:x-16}", set.fingerprint()).str() +
            "): a different manifest, seed, packing or batch shape");
  return p;
}

struct Prefetcher::Slot {
  std::optional<Microbatch> batch;
  std::string error;
};

Prefetcher::Prefetcher(const DataSet &set, int64_t replica,
                       DataPosition position, int threads, int64_t depth)
    : set(set), replica(replica), depth(std::max<int64_t>(depth, 1)),
      threads(std::max(threads, 1)), started(Clock::now()) {
  totals.threads = this->threads;
  start(position);
}

Prefetcher::~Prefetcher() { stop(); }

DataPosition Prefetcher::at(int64_t ticket) const {
  int64_t m = set.geometry().microbatches;
  int64_t flat = origin.step * m + origin.microbatch + ticket;
  return {flat / m, flat % m};
}

void Prefetcher::start(DataPosition position) {
  {
    std::lock_guard<std::mutex> hold(lock);
    origin = position;
    nextTicket = consumed = 0;
    stopping = false;
    done.clear();
  }
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([this] { work(); });
}

void Prefetcher::stop() {
  {
    std::lock_guard<std::mutex> hold(lock);
    stopping = true;
    ++generation;
  }
  space.notify_all();
  ready.notify_all();
  for (std::thread &w : workers)
    w.join();
  workers.clear();
}

void Prefetcher::work() {
  std::unique_lock<std::mutex> hold(lock);
  for (;;) {
    space.wait(hold, [&] { return stopping || nextTicket < consumed + depth; });
    if (stopping)
      return;
    int64_t ticket = nextTicket++;
    int64_t gen = generation;
    DataPosition p = at(ticket);
    hold.unlock();
    auto begin = Clock::now();
    auto slot = std::make_unique<Slot>();
    auto batch = set.microbatch(p.step, replica, p.microbatch);
    if (batch)
      slot->batch = std::move(*batch);
    else
      slot->error = llvm::toString(batch.takeError());
    double busy = seconds(Clock::now() - begin);
    hold.lock();
    if (gen != generation)
      continue;
    totals.decodeSeconds += busy;
    done[ticket] = std::move(slot);
    ready.notify_all();
  }
}

llvm::Expected<Microbatch> Prefetcher::next() {
  std::unique_lock<std::mutex> hold(lock);
  int64_t ticket = consumed;
  auto begin = Clock::now();
  ready.wait(hold, [&] { return done.count(ticket) != 0; });
  totals.waitSeconds += seconds(Clock::now() - begin);
  std::unique_ptr<Slot> slot = std::move(done[ticket]);
  done.erase(ticket);
  ++consumed;
  space.notify_all();
  if (!slot->batch)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), slot->error);
  ++totals.batches;
  totals.samples += slot->batch->samples;
  return std::move(*slot->batch);
}

llvm::Expected<Microbatch> Prefetcher::get(int64_t step, int64_t mb) {
  if (!(position() == DataPosition{step, mb}))
    seek({step, mb});
  return next();
}

DataPosition Prefetcher::position() const {
  std::lock_guard<std::mutex> hold(lock);
  return at(consumed);
}

void Prefetcher::seek(DataPosition position) {
  stop();
  start(position);
}

PrefetchStats Prefetcher::stats() const {
  std::lock_guard<std::mutex> hold(lock);
  PrefetchStats s = totals;
  s.wallSeconds = seconds(Clock::now() - started);
  return s;
}
