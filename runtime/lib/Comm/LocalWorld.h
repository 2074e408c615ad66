//===- LocalWorld.h - the state the threads of a local world share -*- C++
//-*-===//
//
// The meeting points of LocalComm (LocalComm.h): one slot per collective
// call of a group, where the members' inputs are copied, the last member
// to arrive combines them once and every member takes its part; and one
// mailbox per (source, destination, tag) with FIFO matching of sends and
// posted receives. One mutex guards everything; waits use one condition
// variable and the world's deadline.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LIB_COMM_LOCALWORLD_H
#define MLLM_RUNTIME_LIB_COMM_LOCALWORLD_H

#include "llvm/Support/Error.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace mllm::runtime::local {

using Bytes = std::vector<char>;

/// One group of a world: its world ranks in group order, and which creation
/// of that list it is (two groups of the same ranks do not share calls).
struct GroupKey {
  std::vector<int64_t> ranks;
  int64_t instance = 0;
  bool operator<(const GroupKey &o) const {
    return std::tie(ranks, instance) < std::tie(o.ranks, o.instance);
  }
};

/// "[0, 2, 3]".
std::string rankList(const std::vector<int64_t> &ranks);

class World {
public:
  World(int size, std::chrono::milliseconds timeout)
      : size(size), timeout(timeout), dead(size, false) {}

  const int size;
  const std::chrono::milliseconds timeout;

  /// The `seq`-th collective call of group rank `me` of `group`. Every
  /// member must pass the same `signature` (the operation and its sizes,
  /// also used in messages). The input is copied; the last member to arrive
  /// runs `combine` on all inputs (in group-rank order) once, and every
  /// member then runs `take` on the result.
  llvm::Error
  collective(const GroupKey &group, int64_t seq, int me,
             const std::string &signature, const void *input, int64_t bytes,
             const std::function<Bytes(const std::vector<Bytes> &)> &combine,
             const std::function<void(const Bytes &)> &take);

  /// Copies the message into the mailbox (sends never wait).
  void send(int src, int dst, int64_t tag, const void *data, int64_t bytes);
  /// Reserves the next message of (src, dst, tag) for a receive.
  int64_t postReceive(int src, int dst, int64_t tag);
  /// Waits for reserved message `ticket` and copies it into `data`.
  llvm::Error waitReceive(int src, int dst, int64_t tag, int64_t ticket,
                          void *data, int64_t bytes);

  /// `rank` is gone: waits on it fail from now on.
  void exit(int rank);

private:
  struct Slot {
    std::string signature;
    std::vector<Bytes> inputs;
    std::vector<bool> arrived;
    int arrivals = 0, departures = 0;
    bool done = false;
    Bytes result;
    /// Set when a member gave up or the calls did not match: every member
    /// fails with it.
    std::string failure;
  };
  struct Mailbox {
    std::map<int64_t, Bytes> messages; ///< by send number
    int64_t sent = 0, posted = 0;
  };

  std::mutex mu;
  std::condition_variable cv;
  std::vector<bool> dead;
  std::map<std::pair<GroupKey, int64_t>, Slot> slots;
  std::map<std::tuple<int, int, int64_t>, Mailbox> mail;
};

} // namespace mllm::runtime::local

#endif // MLLM_RUNTIME_LIB_COMM_LOCALWORLD_H
