//===- PairOrder.cpp - The per-pair order a tagless transport needs -------===//

#include "mllm/runtime/cuda/PairOrder.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <map>
#include <utility>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Error
cuda::checkPairOrder(llvm::ArrayRef<std::vector<P2PMessage>> perRank) {
  const int ranks = static_cast<int>(perRank.size());
  // (from, to) -> the messages in the sender's and the receiver's order.
  std::map<std::pair<int, int>, std::vector<P2PMessage>> sent, received;
  for (int r = 0; r < ranks; ++r)
    for (const P2PMessage &m : perRank[r]) {
      if (m.from < 0 || m.from >= ranks || m.to < 0 || m.to >= ranks)
        return fail(llvm::formatv("rank {0} posts a message from rank {1} to "
                                  "rank {2}, outside the world of {3} ranks",
                                  r, m.from, m.to, ranks));
      if (m.from != r && m.to != r)
        return fail(llvm::formatv("rank {0} posts a message from rank {1} to "
                                  "rank {2}, which is not its own",
                                  r, m.from, m.to));
      if (m.from == m.to)
        return fail(llvm::formatv("rank {0} posts a message to itself", r));
      (m.from == r ? sent : received)[{m.from, m.to}].push_back(m);
    }
  for (const auto &[pair, receives] : received)
    if (!sent.count(pair))
      return fail(llvm::formatv("rank {0} receives {1} message(s) from rank "
                                "{2}, which sends it none",
                                pair.second, receives.size(), pair.first));
  for (const auto &[pair, sends] : sent) {
    auto [from, to] = pair;
    const std::vector<P2PMessage> &receives = received[pair];
    size_t common = std::min(sends.size(), receives.size());
    for (size_t i = 0; i < common; ++i)
      if (sends[i].tag != receives[i].tag ||
          sends[i].bytes != receives[i].bytes)
        return fail(llvm::formatv(
            "message {0} from rank {1} to rank {2} (tag {3}, {4} bytes) "
            "would be taken by receive {0} of rank {2} (tag {5}, {6} bytes): "
            "NCCL pairs the messages of two ranks in posting order, so both "
            "must post them in the same order",
            i, from, to, sends[i].tag, sends[i].bytes, receives[i].tag,
            receives[i].bytes));
    if (sends.size() != receives.size())
      return fail(llvm::formatv("rank {0} sends {1} message(s) to rank {2}, "
                                "which receives {3}",
                                from, sends.size(), to, receives.size()));
  }
  return llvm::Error::success();
}

llvm::Error cuda::exchangeAndCheckPairOrder(Comm &world,
                                            llvm::ArrayRef<P2PMessage> mine) {
  std::vector<int64_t> all(world.worldSize());
  for (int r = 0; r < world.worldSize(); ++r)
    all[r] = r;
  auto group = world.group(all);
  if (!group)
    return group.takeError();
  // First the lengths, then every list padded to the longest (the
  // all-gather takes the same size from every rank).
  int64_t count = static_cast<int64_t>(mine.size());
  std::vector<int64_t> counts(all.size());
  if (llvm::Error e =
          (*group)->allGatherBytes(&count, sizeof(count), counts.data()))
    return e;
  const int64_t longest = *std::max_element(counts.begin(), counts.end());
  std::vector<P2PMessage> padded(mine.begin(), mine.end());
  padded.resize(static_cast<size_t>(longest));
  std::vector<P2PMessage> gathered(all.size() * longest);
  if (longest > 0)
    if (llvm::Error e = (*group)->allGatherBytes(
            padded.data(), longest * sizeof(P2PMessage), gathered.data()))
      return e;
  std::vector<std::vector<P2PMessage>> perRank(all.size());
  for (size_t r = 0; r < all.size(); ++r)
    perRank[r].assign(gathered.begin() + r * longest,
                      gathered.begin() + r * longest + counts[r]);
  return checkPairOrder(perRank);
}
