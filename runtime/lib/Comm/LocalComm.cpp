//===- LocalComm.cpp - Comm over the shared state of a local world --------===//
//
// The Group and Comm classes of LocalComm: argument checks, the signature
// every member of a call must agree on, and the arithmetic of each
// collective (run once per call by World::collective, in group-rank order).
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/LocalComm.h"

#include "LocalWorld.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

using namespace mllm::runtime;
using namespace mllm::runtime::local;

namespace {

template <typename T>
const T *as(const Bytes &b) {
  return reinterpret_cast<const T *>(b.data());
}

/// Element-wise `op` over the inputs, folded in group-rank order.
template <typename T, typename Op>
Bytes fold(const std::vector<Bytes> &inputs, Op op) {
  Bytes out = inputs[0];
  T *acc = reinterpret_cast<T *>(out.data());
  const size_t n = out.size() / sizeof(T);
  for (size_t r = 1; r < inputs.size(); ++r)
    for (size_t i = 0; i < n; ++i)
      acc[i] = op(acc[i], as<T>(inputs[r])[i]);
  return out;
}

Bytes concat(const std::vector<Bytes> &inputs) {
  Bytes out;
  for (const Bytes &b : inputs)
    out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::string countList(llvm::ArrayRef<int64_t> counts) {
  return rankList(std::vector<int64_t>(counts.begin(), counts.end()));
}

class LocalGroup final : public Group {
public:
  LocalGroup(std::shared_ptr<World> world, GroupKey key, int me)
      : world(std::move(world)), key(std::move(key)), me(me) {}
  int size() const override { return static_cast<int>(key.ranks.size()); }
  int rank() const override { return me; }

  llvm::Error allReduceSum(float *data, int64_t count) override {
    return reduce(data, count, "allReduceSum(float", std::plus<float>());
  }
  llvm::Error allReduceSum(double *data, int64_t count) override {
    return reduce(data, count, "allReduceSum(double", std::plus<double>());
  }
  llvm::Error allReduceMax(float *data, int64_t count) override {
    return reduce(data, count, "allReduceMax(float",
                  [](float a, float b) { return std::max(a, b); });
  }

  llvm::Error allGatherBytes(const void *local, int64_t bytes,
                             void *out) override {
    if (bytes < 0)
      return llvm::createStringError("allGatherBytes: negative size");
    return call("allGatherBytes(" + std::to_string(bytes) + " bytes)", local,
                bytes, concat, [&](const Bytes &all) {
                  if (!all.empty())
                    std::memcpy(out, all.data(), all.size());
                });
  }

  llvm::Error allGather(const float *local, llvm::ArrayRef<int64_t> counts,
                        float *out) override {
    if (llvm::Error e = checkCounts("allGather", counts))
      return e;
    return call("allGather(float x " + countList(counts) + ")", local,
                counts[me] * int64_t(sizeof(float)), concat,
                [&](const Bytes &all) {
                  if (!all.empty())
                    std::memcpy(out, all.data(), all.size());
                });
  }

  llvm::Error reduceScatterSum(const float *in, llvm::ArrayRef<int64_t> counts,
                               float *local) override {
    if (llvm::Error e = checkCounts("reduceScatterSum", counts))
      return e;
    int64_t total = 0, offset = 0;
    for (int64_t i = 0; i < size(); ++i) {
      if (i == me)
        offset = total;
      total += counts[i];
    }
    return call(
        "reduceScatterSum(float x " + countList(counts) + ")", in,
        total * int64_t(sizeof(float)),
        [](const std::vector<Bytes> &inputs) {
          return fold<float>(inputs, std::plus<float>());
        },
        [&](const Bytes &sum) {
          std::copy_n(as<float>(sum) + offset, counts[me], local);
        });
  }

private:
  template <typename T, typename Op>
  llvm::Error reduce(T *data, int64_t count, const std::string &name, Op op) {
    if (count < 0)
      return llvm::createStringError(name + "): negative count");
    return call(
        name + " x " + std::to_string(count) + ")", data,
        count * int64_t(sizeof(T)),
        [&](const std::vector<Bytes> &inputs) { return fold<T>(inputs, op); },
        [&](const Bytes &r) {
          if (count)
            std::memcpy(data, r.data(), r.size());
        });
  }

  llvm::Error checkCounts(const char *name, llvm::ArrayRef<int64_t> counts) {
    if (static_cast<int64_t>(counts.size()) != size())
      return llvm::createStringError("%s: %zu counts for a group of %d ranks",
                                     name, counts.size(), size());
    for (int64_t c : counts)
      if (c < 0)
        return llvm::createStringError("%s: a negative count", name);
    return llvm::Error::success();
  }

  llvm::Error call(const std::string &signature, const void *input,
                   int64_t bytes,
                   const std::function<Bytes(const std::vector<Bytes> &)> &f,
                   const std::function<void(const Bytes &)> &take) {
    return world->collective(key, seq++, me, signature, input, bytes, f, take);
  }

  std::shared_ptr<World> world;
  GroupKey key;
  int me;
  int64_t seq = 0;
};

/// A send is complete once copied; a receive waits in wait().
class LocalRequest final : public Request {
public:
  LocalRequest() = default;
  LocalRequest(std::shared_ptr<World> world, int src, int dst, int64_t tag,
               int64_t ticket, void *data, int64_t bytes)
      : world(std::move(world)), src(src), dst(dst), tag(tag), ticket(ticket),
        data(data), bytes(bytes) {}
  llvm::Error wait() override {
    if (!world)
      return llvm::Error::success();
    auto w = std::move(world); // a second wait() is a no-op
    return w->waitReceive(src, dst, tag, ticket, data, bytes);
  }

private:
  std::shared_ptr<World> world;
  int src = 0, dst = 0;
  int64_t tag = 0, ticket = 0;
  void *data = nullptr;
  int64_t bytes = 0;
};

class LocalComm final : public Comm {
public:
  LocalComm(std::shared_ptr<World> world, int rank)
      : world(std::move(world)), me(rank) {}
  ~LocalComm() override { world->exit(me); }

  int worldRank() const override { return me; }
  int worldSize() const override { return world->size; }

  llvm::Expected<std::unique_ptr<Group>>
  group(llvm::ArrayRef<int64_t> ranks) override {
    std::vector<int64_t> list(ranks.begin(), ranks.end());
    int mine = -1;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i] < 0 || list[i] >= world->size ||
          std::count(list.begin(), list.end(), list[i]) != 1)
        return llvm::createStringError("group " + rankList(list) +
                                       ": ranks must be distinct world ranks "
                                       "below " +
                                       std::to_string(world->size));
      if (list[i] == me)
        mine = static_cast<int>(i);
    }
    if (mine < 0)
      return llvm::createStringError("group " + rankList(list) +
                                     " does not include world rank " +
                                     std::to_string(me));
    GroupKey key{list, instances[list]++};
    return std::make_unique<LocalGroup>(world, std::move(key), mine);
  }

  llvm::Expected<std::unique_ptr<Request>>
  isend(const void *data, int64_t bytes, int peer, int64_t tag) override {
    if (llvm::Error e = checkPeer("isend", peer, bytes))
      return std::move(e);
    world->send(me, peer, tag, data, bytes);
    return std::make_unique<LocalRequest>();
  }

  llvm::Expected<std::unique_ptr<Request>>
  irecv(void *data, int64_t bytes, int peer, int64_t tag) override {
    if (llvm::Error e = checkPeer("irecv", peer, bytes))
      return std::move(e);
    int64_t ticket = world->postReceive(peer, me, tag);
    return std::make_unique<LocalRequest>(world, peer, me, tag, ticket, data,
                                          bytes);
  }

  llvm::Error barrier() override {
    // Its own group instance (-1), so it never meets a group's collectives.
    GroupKey all{{}, -1};
    for (int i = 0; i < world->size; ++i)
      all.ranks.push_back(i);
    return world->collective(
        all, barriers++, me, "barrier", nullptr, 0,
        [](const std::vector<Bytes> &) { return Bytes(); },
        [](const Bytes &) {});
  }

private:
  llvm::Error checkPeer(const char *op, int peer, int64_t bytes) {
    if (peer < 0 || peer >= world->size || peer == me || bytes < 0)
      return llvm::createStringError(
          "%s on world rank %d: peer %d or size %lld is invalid", op, me, peer,
          static_cast<long long>(bytes));
    return llvm::Error::success();
  }

  std::shared_ptr<World> world;
  int me;
  std::map<std::vector<int64_t>, int64_t> instances;
  int64_t barriers = 0;
};

} // namespace

std::vector<std::unique_ptr<Comm>>
mllm::runtime::makeLocalWorld(int ranks, std::chrono::milliseconds timeout) {
  auto world = std::make_shared<World>(ranks, timeout);
  std::vector<std::unique_ptr<Comm>> comms;
  for (int r = 0; r < ranks; ++r)
    comms.push_back(std::make_unique<LocalComm>(world, r));
  return comms;
}

llvm::Error
mllm::runtime::runLocalWorld(int ranks, std::chrono::milliseconds timeout,
                             const std::function<llvm::Error(Comm &)> &body) {
  std::vector<std::unique_ptr<Comm>> world = makeLocalWorld(ranks, timeout);
  std::vector<std::string> failures(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      if (llvm::Error e = body(*world[r]))
        failures[r] =
            "rank " + std::to_string(r) + ": " + llvm::toString(std::move(e));
      world[r].reset(); // peers waiting on this rank fail now
    });
  for (std::thread &t : threads)
    t.join();
  llvm::Error all = llvm::Error::success();
  for (std::string &f : failures)
    if (!f.empty())
      all = llvm::joinErrors(std::move(all), llvm::createStringError(f));
  return all;
}
