//===- ChromeTrace.cpp - a simulated iteration as a Chrome trace ----------===//
#include "Timeline.h"

#include "llvm/Support/JSON.h"

using namespace mllm::sched;
using namespace mllm::sched::detail;

void mllm::sched::writeChromeTrace(const PipelineGraph &graph,
                                   const SimResult &result,
                                   llvm::raw_ostream &os, int64_t maxRanks) {
  int numStages = static_cast<int>(result.stages.size());
  int64_t totalRanks = 0;
  std::vector<std::vector<int64_t>> ranks =
      ranksOfStages(graph, numStages, totalRanks);
  bool perRank = maxRanks <= 0 || totalRanks <= maxRanks;
  // Per stage, its threads: (tid, name).
  std::vector<std::vector<std::pair<int64_t, std::string>>> threads(numStages);
  for (int s = 0; s < numStages; ++s) {
    if (ranks[s].empty()) {
      threads[s].push_back({s, displayName(graph, s)});
    } else if (perRank) {
      for (int64_t rank : ranks[s])
        threads[s].push_back({rank, "rank " + std::to_string(rank)});
    } else {
      threads[s].push_back({*std::min_element(ranks[s].begin(), ranks[s].end()),
                            rankRange(ranks[s])});
    }
  }

  llvm::json::OStream j(os);
  j.objectBegin();
  j.attribute("displayTimeUnit", "ms");
  j.attributeBegin("traceEvents");
  j.arrayBegin();
  auto meta = [&](llvm::StringRef name, int pid, std::optional<int64_t> tid,
                  llvm::StringRef key, llvm::json::Value value) {
    j.object([&] {
      j.attribute("name", name);
      j.attribute("ph", "M");
      j.attribute("pid", pid);
      if (tid)
        j.attribute("tid", *tid);
      j.attributeObject("args", [&] { j.attribute(key, std::move(value)); });
    });
  };
  for (int s = 0; s < numStages; ++s) {
    meta("process_name", s, std::nullopt, "name", displayName(graph, s));
    meta("process_sort_index", s, std::nullopt, "sort_index", s);
    for (const auto &[tid, name] : threads[s]) {
      meta("thread_name", s, tid, "name", name);
      meta("thread_sort_index", s, tid, "sort_index", tid);
    }
  }
  for (const Event &e : result.events) {
    // Zero-length transfers (no bytes, infinite bandwidth) are noise.
    if (e.end <= e.start && !isCompute(e.kind))
      continue;
    if (e.stage < 0 || e.stage >= numStages)
      continue;
    for (const auto &thread : threads[e.stage]) {
      // A measured event belongs to its rank's track (or to the track of
      // the stage's rank range).
      if (e.rank >= 0 && perRank && thread.first != e.rank)
        continue;
      j.object([&] {
        j.attribute("name", eventName(e));
        j.attribute("cat", category(e.kind));
        j.attribute("ph", "X");
        j.attribute("pid", e.stage);
        j.attribute("tid", thread.first);
        j.attribute("ts", e.start * 1e6);
        j.attribute("dur", (e.end - e.start) * 1e6);
        j.attributeObject("args", [&] {
          j.attribute("kind", toString(e.kind));
          if (e.microbatch >= 0)
            j.attribute("microbatch", e.microbatch);
          if (e.peer >= 0)
            j.attribute("peer", displayName(graph, e.peer));
        });
      });
    }
  }
  j.arrayEnd();
  j.attributeEnd();
  j.objectEnd();
  os << "\n";
}
