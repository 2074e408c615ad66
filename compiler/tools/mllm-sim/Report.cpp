//===- Report.cpp - mllm-sim's table and JSON -----------------------------===//
#include "SimTool.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

#include <cmath>

using namespace mllm;
using namespace mllm::simtool;

namespace {

constexpr double GiB = 1024.0 * 1024.0 * 1024.0;

std::string scheduleName(sched::ScheduleKind kind) {
  return sched::stringifyScheduleKind(kind).str();
}

int64_t gpusOf(const sched::StageInfo &s) {
  return std::max<int64_t>(s.tp, 1) * std::max<int64_t>(s.cp, 1) *
         std::max<int64_t>(s.dp, 1);
}

/// The idle fraction of all GPUs: 1 - sum(busy x GPUs) / (iteration x
/// world size).
double meanBubble(const Run &run) {
  const auto &r = run.result;
  if (r.iterationTime <= 0 || r.worldSize <= 0)
    return 0;
  double busy = 0;
  for (size_t s = 0; s < r.stages.size(); ++s)
    busy += r.stages[s].busy * static_cast<double>(gpusOf(run.graph.stages[s]));
  return 1 - busy / (r.iterationTime * static_cast<double>(r.worldSize));
}

int64_t peakMemory(const Run &run) {
  int64_t peak = 0;
  for (const auto &s : run.result.stages)
    peak = std::max(peak, s.peakMemory);
  return peak;
}

/// Left-aligned columns. A row's last cell pads nothing, so it does not
/// widen its column: a long message ending a short row ("cannot plan:
/// ...") leaves the other rows as they are.
void printTable(llvm::raw_ostream &os,
                const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> width;
  for (const auto &row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (c >= width.size())
        width.push_back(0);
      if (c + 1 < row.size())
        width[c] = std::max(width[c], row[c].size());
    }
  for (const auto &row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size())
        line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    os << llvm::StringRef(line).rtrim() << "\n";
  }
}

std::string fmt(const char *format, double value) {
  std::string out;
  llvm::raw_string_ostream(out) << llvm::format(format, value);
  return out;
}

/// A number, or null where it is not finite (JSON has no inf or NaN).
void number(llvm::json::OStream &j, llvm::StringRef key, double value) {
  if (std::isfinite(value))
    j.attribute(key, value);
  else
    j.attribute(key, nullptr);
}

} // namespace

void mllm::simtool::printRun(const Run &run, llvm::StringRef input,
                             llvm::raw_ostream &os) {
  const auto &g = run.graph;
  const auto &r = run.result;
  os << "mllm-sim: " << input << ": schedule " << scheduleName(run.kind)
     << ", partition " << run.partition << ", " << g.stages.size()
     << " stages, " << g.microbatches << " microbatches, " << r.worldSize
     << " GPUs\n";
  os << llvm::format("iteration %.3f ms (mllmc estimates %.3f ms), %.1f "
                     "tokens/s, MFU %.1f%%, %lld events\n\n",
                     r.iterationTime * 1e3, run.estimateMs, r.tokensPerSecond,
                     r.mfu * 100, static_cast<long long>(r.eventsSimulated));
  std::vector<std::vector<std::string>> rows = {
      {"stage", "part", "GPUs", "F ms", "Bw ms", "Bd ms", "recompute ms",
       "busy %", "comm %", "bubble %", "in flight", "peak GiB"}};
  for (size_t s = 0; s < r.stages.size(); ++s) {
    const auto &info = g.stages[s];
    const auto &st = r.stages[s];
    double it = r.iterationTime > 0 ? r.iterationTime : 1;
    rows.push_back(
        {info.name, info.part, std::to_string(gpusOf(info)),
         fmt("%.3f", st.fwd * 1e3), fmt("%.3f", st.bwdWeight * 1e3),
         fmt("%.3f", st.bwdInput * 1e3), fmt("%.3f", st.recompute * 1e3),
         fmt("%.1f", st.busy / it * 100), fmt("%.1f", st.comm / it * 100),
         fmt("%.1f", st.bubble * 100), std::to_string(st.maxInFlight),
         fmt("%.2f", st.peakMemory / GiB)});
  }
  printTable(os, rows);
}

void mllm::simtool::printCompare(const std::vector<Run> &runs,
                                 llvm::StringRef input, llvm::raw_ostream &os) {
  os << "mllm-sim: " << input
     << ": partitions, schedules, layouts and CP policies compared\n\n";
  double base =
      runs.empty() || !runs[0].error.empty() ? 0 : runs[0].result.iterationTime;
  std::vector<std::vector<std::string>> rows = {
      {"variant", "partition", "layout", "cp", "schedule", "iteration ms",
       "estimate ms", "vs frozen-aware", "bubble %", "peak GiB", "tokens/s",
       "MFU %"}};
  for (const Run &run : runs) {
    std::vector<std::string> row = {run.variant, run.partition, run.layout,
                                    run.cpBalance, scheduleName(run.kind)};
    if (!run.error.empty()) {
      row.push_back("cannot plan: " + run.error);
      rows.push_back(std::move(row));
      continue;
    }
    const auto &r = run.result;
    for (std::string cell :
         {fmt("%.3f", r.iterationTime * 1e3), fmt("%.3f", run.estimateMs),
          base > 0 ? fmt("%.3fx", r.iterationTime / base) : std::string("-"),
          fmt("%.1f", meanBubble(run) * 100),
          fmt("%.2f", peakMemory(run) / GiB), fmt("%.1f", r.tokensPerSecond),
          fmt("%.1f", r.mfu * 100)})
      row.push_back(std::move(cell));
    rows.push_back(std::move(row));
  }
  printTable(os, rows);
}

void mllm::simtool::runJson(llvm::json::OStream &j, const Run &run,
                            bool withStages) {
  const auto &g = run.graph;
  const auto &r = run.result;
  if (!run.variant.empty())
    j.attribute("variant", run.variant);
  j.attribute("partition", run.partition);
  j.attribute("layout", run.layout);
  j.attribute("cp_balance", run.cpBalance);
  j.attribute("schedule", scheduleName(run.kind));
  if (!run.error.empty()) {
    j.attribute("error", run.error);
    return;
  }
  j.attribute("stages_count", static_cast<int64_t>(g.stages.size()));
  j.attribute("microbatches", g.microbatches);
  j.attribute("gpus", r.worldSize);
  number(j, "iteration_ms", r.iterationTime * 1e3);
  number(j, "estimate_ms", run.estimateMs);
  number(j, "tokens_per_s", r.tokensPerSecond);
  number(j, "mfu", r.mfu);
  number(j, "bubble", meanBubble(run));
  j.attribute("peak_memory_bytes", peakMemory(run));
  j.attribute("events", r.eventsSimulated);
  if (!withStages)
    return;
  j.attributeArray("stages", [&] {
    for (size_t s = 0; s < r.stages.size(); ++s) {
      const auto &info = g.stages[s];
      const auto &st = r.stages[s];
      j.object([&] {
        j.attribute("name", info.name);
        j.attribute("part", info.part);
        j.attribute("gpus", gpusOf(info));
        number(j, "fwd_ms", st.fwd * 1e3);
        number(j, "bwd_weight_ms", st.bwdWeight * 1e3);
        number(j, "bwd_input_ms", st.bwdInput * 1e3);
        number(j, "recompute_ms", st.recompute * 1e3);
        number(j, "busy_ms", st.busy * 1e3);
        number(j, "comm_ms", st.comm * 1e3);
        number(j, "bubble", st.bubble);
        j.attribute("max_in_flight", st.maxInFlight);
        j.attribute("peak_memory_bytes", st.peakMemory);
      });
    }
  });
}
