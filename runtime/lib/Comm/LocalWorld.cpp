//===- LocalWorld.cpp - the meeting points of a local world ---------------===//
//
// Collective slots and mailboxes of LocalComm. A failing wait marks its
// slot failed before it returns, so the other members fail at once with
// the same reason instead of each waiting out its own deadline.
//
//===----------------------------------------------------------------------===//

#include "LocalWorld.h"

#include <cstring>

using namespace mllm::runtime::local;

std::string mllm::runtime::local::rankList(const std::vector<int64_t> &ranks) {
  std::string s = "[";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s + "]";
}

llvm::Error World::collective(
    const GroupKey &group, int64_t seq, int me, const std::string &signature,
    const void *input, int64_t bytes,
    const std::function<Bytes(const std::vector<Bytes> &)> &combine,
    const std::function<void(const Bytes &)> &take) {
  const int n = static_cast<int>(group.ranks.size());
  const std::string where = signature + " on group " + rankList(group.ranks) +
                            " (call " + std::to_string(seq) + ")";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu);
  auto key = std::make_pair(group, seq);
  Slot &slot = slots[key];
  if (slot.inputs.empty()) {
    slot.signature = signature;
    slot.inputs.resize(n);
    slot.arrived.assign(n, false);
  } else if (slot.failure.empty() && slot.signature != signature) {
    slot.failure = "mismatched collectives on group " + rankList(group.ranks) +
                   " (call " + std::to_string(seq) + "): world rank " +
                   std::to_string(group.ranks[me]) + " called " + signature +
                   ", others " + slot.signature;
    cv.notify_all();
  }
  if (!slot.failure.empty())
    return llvm::createStringError(slot.failure);
  const char *in = static_cast<const char *>(input);
  slot.inputs[me].assign(in, in + bytes);
  slot.arrived[me] = true;
  if (++slot.arrivals == n) {
    slot.result = combine(slot.inputs);
    slot.done = true;
    cv.notify_all();
  }
  // The members that have not arrived; `dead` tells whether one exited.
  auto missing = [&](bool deadOnly) {
    std::vector<int64_t> out;
    for (int i = 0; i < n; ++i)
      if (!slot.arrived[i] && (!deadOnly || dead[group.ranks[i]]))
        out.push_back(group.ranks[i]);
    return out;
  };
  while (!slot.done && slot.failure.empty()) {
    if (!missing(true).empty()) {
      slot.failure = where + ": world rank " + rankList(missing(true)) +
                     " exited before joining";
      cv.notify_all();
      break;
    }
    if (cv.wait_until(lock, deadline) == std::cv_status::timeout &&
        !slot.done && slot.failure.empty()) {
      slot.failure = where + ": world rank " + std::to_string(group.ranks[me]) +
                     " timed out after " + std::to_string(timeout.count()) +
                     " ms waiting for world ranks " + rankList(missing(false));
      cv.notify_all();
    }
  }
  if (!slot.done)
    return llvm::createStringError(slot.failure);
  take(slot.result);
  if (++slot.departures == n)
    slots.erase(key);
  return llvm::Error::success();
}

void World::send(int src, int dst, int64_t tag, const void *data,
                 int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu);
  Mailbox &box = mail[{src, dst, tag}];
  const char *p = static_cast<const char *>(data);
  box.messages[box.sent++].assign(p, p + bytes);
  cv.notify_all();
}

int64_t World::postReceive(int src, int dst, int64_t tag) {
  std::lock_guard<std::mutex> lock(mu);
  return mail[{src, dst, tag}].posted++;
}

llvm::Error World::waitReceive(int src, int dst, int64_t tag, int64_t ticket,
                               void *data, int64_t bytes) {
  const std::string where = "receive on world rank " + std::to_string(dst) +
                            " from world rank " + std::to_string(src) +
                            " (tag " + std::to_string(tag) + ", " +
                            std::to_string(bytes) + " bytes)";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu);
  Mailbox &box = mail[{src, dst, tag}];
  // Messages sent before the peer exited are still delivered.
  auto ready = [&] { return box.messages.count(ticket) || dead[src]; };
  if (!cv.wait_until(lock, deadline, ready))
    return llvm::createStringError(where + ": timed out after " +
                                   std::to_string(timeout.count()) + " ms");
  auto it = box.messages.find(ticket);
  if (it == box.messages.end())
    return llvm::createStringError(where + ": the peer exited without "
                                           "sending it");
  if (static_cast<int64_t>(it->second.size()) != bytes)
    return llvm::createStringError(where + ": the message has " +
                                   std::to_string(it->second.size()) +
                                   " bytes");
  if (bytes)
    std::memcpy(data, it->second.data(), bytes);
  box.messages.erase(it);
  return llvm::Error::success();
}

void World::exit(int rank) {
  std::lock_guard<std::mutex> lock(mu);
  dead[rank] = true;
  cv.notify_all();
}
