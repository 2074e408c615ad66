//===- NCCLWorld.cpp - The world communicator, groups and channels --------===//
//
// Bootstrap over any Comm (the MPI world in practice), group creation by
// ncclCommSplit after an all-gather of every rank's request, and the
// point-to-point channels: one two-rank communicator and stream per
// direction of every connected pair, created in rounds of disjoint pairs
// (each round is one ncclCommSplit of the world).
//
//===----------------------------------------------------------------------===//

#include "NCCLState.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <map>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;
using namespace mllm::runtime::cuda::detail;

namespace {

/// One direction of a pair: its communicator (the sender is rank 0 of it)
/// and its stream.
struct Channel {
  ncclComm_t comm = nullptr;
  Stream stream;
  int peer = 0; // the other end's rank in `comm`
};

struct PendingOp {
  bool send;
  void *data;
  int64_t bytes;
  Channel *channel;
  std::shared_ptr<Completion> done;
};

class World final : public NCCLWorld {
public:
  World(Comm &bootstrap, std::unique_ptr<Group> boot,
        std::shared_ptr<NCCLState> state, ncclComm_t comm, Stream stream,
        DeviceBuffer scratch)
      : bootstrap(bootstrap), boot(std::move(boot)), state(std::move(state)),
        comm(comm), stream(std::move(stream)), scratch(std::move(scratch)) {}

  int worldRank() const override { return bootstrap.worldRank(); }
  int worldSize() const override { return bootstrap.worldSize(); }
  int device() const override { return state->device; }

  llvm::Expected<std::unique_ptr<Group>>
  group(llvm::ArrayRef<int64_t> ranks) override {
    auto g = split(ranks);
    if (!g)
      return g.takeError();
    return std::unique_ptr<Group>(std::move(*g));
  }
  llvm::Expected<std::unique_ptr<NCCLGroup>>
  split(llvm::ArrayRef<int64_t> ranks) override;

  llvm::Error
  connectPeers(llvm::ArrayRef<std::pair<int, int>> directedPairs) override;
  void expectMessages(llvm::ArrayRef<P2PMessage> mine) override {
    expected.clear();
    cursor.clear();
    for (const P2PMessage &m : mine)
      expected[{m.from, m.to}].push_back(m);
  }
  void beginP2PGroup() override { ++groupDepth; }
  llvm::Error endP2PGroup() override {
    if (groupDepth == 0 || --groupDepth > 0)
      return llvm::Error::success();
    std::vector<PendingOp> ops = std::move(pending);
    pending.clear();
    return launch(ops);
  }

  llvm::Expected<std::unique_ptr<Request>>
  isend(const void *data, int64_t bytes, int peer, int64_t tag) override {
    return post(true, const_cast<void *>(data), bytes, peer, tag);
  }
  llvm::Expected<std::unique_ptr<Request>>
  irecv(void *data, int64_t bytes, int peer, int64_t tag) override {
    return post(false, data, bytes, peer, tag);
  }

  llvm::Error barrier() override {
    if (llvm::Error e = state->checkAlive())
      return e;
    MLLM_RT_CUDA(cudaSetDevice(state->device));
    MLLM_RT_NCCL(comm, ncclAllReduce(scratch.data(), scratch.data(), 1,
                                     ncclFloat, ncclSum, comm, stream.get()));
    const char *what = "the barrier of all ranks";
    if (llvm::Error e = state->settle(comm, what))
      return e;
    auto done = makeCompletion(stream.get());
    if (!done)
      return done.takeError();
    return state->wait(comm, (*done)->event, what);
  }

private:
  llvm::Expected<std::unique_ptr<Request>>
  post(bool send, void *data, int64_t bytes, int peer, int64_t tag);
  llvm::Error launch(const std::vector<PendingOp> &ops);
  /// ncclCommSplit of the world; `newComm` is null for NCCL_SPLIT_NOCOLOR.
  llvm::Error splitWorld(int color, int key, ncclComm_t &newComm,
                         const std::string &what);

  Comm &bootstrap;
  std::unique_ptr<Group> boot; // all ranks, over the bootstrap Comm
  std::shared_ptr<NCCLState> state;
  ncclComm_t comm;
  Stream stream;
  DeviceBuffer scratch; // the barrier's float
  DeviceBuffer hello;   // the byte that connects each channel
  std::map<std::pair<int, int>, Channel> channels;
  std::map<std::pair<int, int>, std::vector<P2PMessage>> expected;
  std::map<std::pair<int, int>, size_t> cursor;
  std::vector<PendingOp> pending;
  int groupDepth = 0;
};

std::string rankList(llvm::ArrayRef<int32_t> ranks) {
  std::string s = "[";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s + "]";
}

llvm::Error World::splitWorld(int color, int key, ncclComm_t &newComm,
                              const std::string &what) {
  MLLM_RT_CUDA(cudaSetDevice(state->device));
  ncclConfig_t config = nonBlockingConfig();
  newComm = nullptr;
  MLLM_RT_NCCL(comm, ncclCommSplit(comm, color, key, &newComm, &config));
  if (llvm::Error e = state->settle(comm, what))
    return e;
  if (!newComm)
    return llvm::Error::success();
  state->add(newComm);
  return state->settle(newComm, what);
}

llvm::Expected<std::unique_ptr<NCCLGroup>>
World::split(llvm::ArrayRef<int64_t> ranks) {
  if (llvm::Error e = state->checkAlive())
    return std::move(e);
  const int n = worldSize(), me = worldRank();
  // Every rank's request: [count, members..., -1 padding].
  std::vector<int32_t> mine(n + 1, -1), all((n + 1) * n);
  mine[0] = static_cast<int32_t>(ranks.size());
  for (size_t i = 0; i < ranks.size() && i < size_t(n); ++i)
    mine[i + 1] = static_cast<int32_t>(ranks[i]);
  if (ranks.size() > size_t(n))
    mine[0] = -1; // reported below, by every rank alike
  if (llvm::Error e =
          boot->allGatherBytes(mine.data(), (n + 1) * 4, all.data()))
    return std::move(e);
  auto request = [&](int r) {
    const int32_t *p = &all[r * (n + 1)];
    return llvm::ArrayRef<int32_t>(p + 1, p[0] < 0 ? 0 : p[0]);
  };
  for (int r = 0; r < n; ++r) {
    const int32_t *p = &all[r * (n + 1)];
    if (p[0] < 0)
      return fail(llvm::formatv("rank {0} asked for a group larger than the "
                                "world",
                                r));
    llvm::ArrayRef<int32_t> g = request(r);
    if (!g.empty() && !llvm::is_contained(g, r))
      return fail(llvm::formatv("rank {0} asked for the group {1}, which "
                                "does not contain it",
                                r, rankList(g)));
    for (int32_t m : g)
      if (m < 0 || m >= n || request(m) != g)
        return fail(llvm::formatv(
            "rank {0} asked for the group {1}, but rank {2} asked for {3}: "
            "on NCCL every rank creates its groups collectively, in the same "
            "order",
            r, rankList(g), m,
            m < 0 || m >= n ? std::string("nothing") : rankList(request(m))));
  }
  llvm::ArrayRef<int32_t> g = request(me);
  if (g.empty()) {
    ncclComm_t none = nullptr;
    if (llvm::Error e =
            splitWorld(NCCL_SPLIT_NOCOLOR, 0, none, "creating NCCL groups"))
      return std::move(e);
    return std::unique_ptr<NCCLGroup>();
  }
  // Groups of one call are disjoint, so the smallest member names one.
  int color = *std::min_element(g.begin(), g.end());
  int key = static_cast<int>(llvm::find(g, me) - g.begin());
  ncclComm_t sub = nullptr;
  if (llvm::Error e =
          splitWorld(color, key, sub, "creating the NCCL group " + rankList(g)))
    return std::move(e);
  auto s = Stream::create();
  if (!s)
    return s.takeError();
  return makeGroup(state, sub, std::vector<int>(g.begin(), g.end()), key,
                   std::move(*s));
}

llvm::Error
World::connectPeers(llvm::ArrayRef<std::pair<int, int>> directedPairs) {
  if (llvm::Error e = state->checkAlive())
    return e;
  const int n = worldSize(), me = worldRank();
  // The same list everywhere, else the splits below would not match.
  uint64_t hash = 1469598103934665603ull;
  for (auto [from, to] : directedPairs)
    for (int v : {from, to})
      hash = (hash ^ static_cast<uint64_t>(v + 1)) * 1099511628211ull;
  std::vector<uint64_t> hashes(n);
  if (llvm::Error e = boot->allGatherBytes(&hash, 8, hashes.data()))
    return e;
  for (int r = 0; r < n; ++r)
    if (hashes[r] != hash)
      return fail(llvm::formatv("connectPeers: rank {0} passed other pairs "
                                "than rank {1}",
                                r, me));
  std::vector<std::pair<int, int>> todo;
  for (auto p : directedPairs) {
    if (p.first < 0 || p.first >= n || p.second < 0 || p.second >= n ||
        p.first == p.second)
      return fail(llvm::formatv("connectPeers: no channel from rank {0} to "
                                "rank {1} in a world of {2}",
                                p.first, p.second, n));
    if (!channels.count(p) && !llvm::is_contained(todo, p))
      todo.push_back(p);
  }
  // Rounds of pairs with no rank in common: one split per round.
  while (!todo.empty()) {
    std::vector<bool> busy(n, false);
    std::vector<std::pair<int, int>> round, rest;
    for (auto p : todo)
      if (!busy[p.first] && !busy[p.second]) {
        busy[p.first] = busy[p.second] = true;
        round.push_back(p);
      } else {
        rest.push_back(p);
      }
    int color = NCCL_SPLIT_NOCOLOR, key = 0;
    for (size_t i = 0; i < round.size(); ++i)
      if (round[i].first == me || round[i].second == me) {
        color = static_cast<int>(i);
        key = round[i].first == me ? 0 : 1;
      }
    ncclComm_t sub = nullptr;
    if (llvm::Error e =
            splitWorld(color, key, sub, "creating the point-to-point channels"))
      return e;
    if (sub) {
      auto s = Stream::create();
      if (!s)
        return s.takeError();
      auto p = round[color];
      Channel &c = channels[p];
      c.comm = sub;
      c.stream = std::move(*s);
      c.peer = 1 - key;
      // NCCL connects a channel at its first operation, and a post waits
      // (launch's settle) until the peer's first operation on it: the
      // schedule's first send would block its rank until the peer got
      // there. Both ends are here now, so pass one byte: launch returns
      // once the channel is connected; the byte itself is not waited for.
      if (!hello.data()) {
        auto b = DeviceBuffer::allocate(1);
        if (!b)
          return b.takeError();
        hello = std::move(*b);
      }
      auto done = makeCompletion(nullptr);
      if (!done)
        return done.takeError();
      if (llvm::Error e =
              launch({PendingOp{key == 0, hello.data(), 1, &c, *done}}))
        return e;
    }
    todo = std::move(rest);
  }
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<Request>>
World::post(bool send, void *data, int64_t bytes, int peer, int64_t tag) {
  const int me = worldRank();
  std::string what =
      llvm::formatv("the {0} rank {1} (tag {2}, {3} bytes)",
                    send ? "message to" : "message from", peer, tag, bytes)
          .str();
  if (llvm::Error e = state->checkAlive())
    return std::move(e);
  if (llvm::Error e = requireDevice(data, bytes, what.c_str()))
    return std::move(e);
  std::pair<int, int> key =
      send ? std::make_pair(me, peer) : std::make_pair(peer, me);
  auto it = channels.find(key);
  if (it == channels.end())
    return fail(what + ": no channel from rank " + llvm::Twine(key.first) +
                " to rank " + llvm::Twine(key.second) +
                " (connectPeers with the plan's pairs first)");
  if (!expected.empty()) {
    const std::vector<P2PMessage> &queue = expected[key];
    size_t &next = cursor[key];
    if (next >= queue.size() || queue[next].tag != tag ||
        queue[next].bytes != bytes)
      return fail(what + ": posted out of the verified per-pair order (" +
                  (next < queue.size()
                       ? llvm::formatv("expected tag {0}, {1} bytes",
                                       queue[next].tag, queue[next].bytes)
                             .str()
                       : std::string("no more messages expected")) +
                  "); NCCL would pair it with another message");
    ++next;
  }
  auto done = makeCompletion(nullptr);
  if (!done)
    return done.takeError();
  PendingOp op{send, data, bytes, &it->second, *done};
  auto request = std::make_unique<detail::EventRequest>(state, it->second.comm,
                                                        *done, what);
  if (groupDepth > 0) {
    pending.push_back(op);
  } else if (llvm::Error e = launch({op})) {
    return std::move(e);
  }
  return std::unique_ptr<Request>(std::move(request));
}

llvm::Error World::launch(const std::vector<PendingOp> &ops) {
  if (ops.empty())
    return llvm::Error::success();
  MLLM_RT_CUDA(cudaSetDevice(state->device));
  MLLM_RT_NCCL(nullptr, ncclGroupStart());
  ncclResult_t rc = ncclSuccess;
  for (const PendingOp &op : ops) {
    Channel &c = *op.channel;
    if (rc == ncclSuccess)
      rc = op.send ? ncclSend(op.data, static_cast<size_t>(op.bytes), ncclUint8,
                              c.peer, c.comm, c.stream.get())
                   : ncclRecv(op.data, static_cast<size_t>(op.bytes), ncclUint8,
                              c.peer, c.comm, c.stream.get());
  }
  ncclResult_t end = ncclGroupEnd();
  MLLM_RT_NCCL(ops.front().channel->comm, rc);
  MLLM_RT_NCCL(ops.front().channel->comm, end);
  for (const PendingOp &op : ops) {
    if (llvm::Error e =
            state->settle(op.channel->comm, "posting point-to-point messages"))
      return e;
    MLLM_RT_CUDA(cudaEventRecord(op.done->event, op.channel->stream.get()));
    op.done->launched = true;
  }
  return llvm::Error::success();
}

} // namespace

llvm::Expected<std::unique_ptr<NCCLWorld>>
NCCLWorld::create(Comm &bootstrap, const NCCLOptions &options) {
  const int n = bootstrap.worldSize(), me = bootstrap.worldRank();
  std::vector<int64_t> all(n);
  for (int r = 0; r < n; ++r)
    all[r] = r;
  auto boot = bootstrap.group(all);
  if (!boot)
    return boot.takeError();
  // Every rank says whether it has a GPU, and rank 0 adds the unique id, so
  // a rank without a device stops everyone with an error instead of
  // leaving them waiting in the initialisation.
  struct Hello {
    int32_t ok = 0;
    ncclUniqueId id = {};
  } hello;
  auto device = selectDevice(options.device, me);
  std::string why;
  if (!device)
    why = llvm::toString(device.takeError());
  else if (me != 0 || ncclGetUniqueId(&hello.id) == ncclSuccess)
    hello.ok = 1;
  else
    why = "ncclGetUniqueId failed";
  std::vector<Hello> hellos(n);
  if (llvm::Error e =
          (*boot)->allGatherBytes(&hello, sizeof(Hello), hellos.data()))
    return std::move(e);
  if (!why.empty())
    return fail("rank " + llvm::Twine(me) + ": " + why);
  for (int r = 0; r < n; ++r)
    if (!hellos[r].ok)
      return fail(llvm::formatv("rank {0} could not start NCCL", r));

  auto state = std::make_shared<NCCLState>(options.timeout, *device);
  ncclConfig_t config = nonBlockingConfig();
  ncclComm_t comm = nullptr;
  MLLM_RT_NCCL(nullptr,
               ncclCommInitRankConfig(&comm, n, hellos[0].id, me, &config));
  state->add(comm);
  if (llvm::Error e = state->settle(
          comm, llvm::formatv("initialising NCCL over {0} ranks", n).str()))
    return std::move(e);
  auto stream = Stream::create();
  if (!stream)
    return stream.takeError();
  auto scratch = DeviceBuffer::allocate(sizeof(float));
  if (!scratch)
    return scratch.takeError();
  MLLM_RT_CUDA(cudaMemset(scratch->data(), 0, sizeof(float)));
  return std::make_unique<World>(bootstrap, std::move(*boot), std::move(state),
                                 comm, std::move(*stream), std::move(*scratch));
}
