//===- Svg.cpp - a simulated iteration as an SVG timeline -----------------===//
#include "Timeline.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

#include <algorithm>
#include <cmath>

using namespace mllm::sched;
using namespace mllm::sched::detail;

namespace {

struct Colour {
  const char *fill;
  const char *label;
};

Colour colourOf(ActionKind kind) {
  switch (kind) {
  case ActionKind::Forward:
    return {"#4e79a7", "forward"};
  case ActionKind::BackwardInput:
    return {"#e15759", "backward (input grad + recompute)"};
  case ActionKind::BackwardWeight:
    return {"#59a14f", "backward (weight grad)"};
  case ActionKind::AllReduceGrads:
    return {"#b07aa1", "gradient all-reduce"};
  case ActionKind::OptimizerStep:
    return {"#9c755f", "optimizer step"};
  default:
    return {"#f2b447", "send / receive"};
  }
}

/// A round tick step: 1, 2 or 5 x 10^k seconds, about `target` ticks.
double tickStep(double span, int target) {
  if (span <= 0)
    return 1;
  double raw = span / target;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw)
      return m * p;
  return 10 * p;
}

std::string formatTime(double seconds, double step) {
  std::string out;
  llvm::raw_string_ostream os(out);
  if (step >= 1)
    os << llvm::format("%g s", seconds);
  else if (step >= 1e-3)
    os << llvm::format("%g ms", std::round(seconds * 1e6) / 1e3);
  else
    os << llvm::format("%g us", std::round(seconds * 1e9) / 1e3);
  return out;
}

} // namespace

void mllm::sched::writeSvg(const PipelineGraph &graph, const SimResult &result,
                           llvm::raw_ostream &os, int64_t maxRankRows) {
  const int numStages = static_cast<int>(result.stages.size());
  int64_t totalRanks = 0;
  std::vector<std::vector<int64_t>> ranks =
      ranksOfStages(graph, numStages, totalRanks);
  bool perRank = totalRanks <= maxRankRows;
  // The rows: (stage, label); each stage's rows are consecutive.
  std::vector<std::pair<int, std::string>> rows;
  std::vector<std::vector<int>> stageRows(numStages);
  for (int s = 0; s < numStages; ++s) {
    std::string name = displayName(graph, s);
    if (perRank && !ranks[s].empty()) {
      for (int64_t rank : ranks[s]) {
        stageRows[s].push_back(static_cast<int>(rows.size()));
        rows.push_back({s, name + " rank " + std::to_string(rank)});
      }
    } else {
      stageRows[s].push_back(static_cast<int>(rows.size()));
      rows.push_back({s, ranks[s].empty()
                             ? name
                             : name + " (" + rankRange(ranks[s]) + ")"});
    }
  }
  const int numRows = static_cast<int>(rows.size());
  size_t longest = 0;
  for (const auto &row : rows)
    longest = std::max(longest, row.second.size());
  const double labelW =
      std::max(140.0, 7.0 * static_cast<double>(longest) + 16);
  const double plotW = 1100, rowH = 28, barH = 20, top = 40;
  const double axisY = top + numRows * rowH + 6;
  const double legendY = axisY + 40;
  const double width = labelW + plotW + 30, height = legendY + 30;
  const double span = result.iterationTime > 0 ? result.iterationTime : 1;
  auto x = [&](double t) { return labelW + t / span * plotW; };

  os << llvm::format("<svg xmlns=\"http://www.w3.org/2000/svg\" "
                     "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f "
                     "%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
                     width, height, width, height);
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << llvm::format("<text x=\"%.1f\" y=\"20\" font-size=\"14\">", labelW)
     << llvm::format("one iteration: %.3f ms, %d stages, %lld GPUs, %lld "
                     "microbatches",
                     result.iterationTime * 1e3, numStages,
                     static_cast<long long>(totalRanks),
                     static_cast<long long>(graph.microbatches))
     << "</text>\n";
  // Rows and their labels, shaded by stage.
  for (int r = 0; r < numRows; ++r) {
    double y = top + r * rowH;
    os << llvm::format("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                       "height=\"%.1f\" fill=\"%s\"/>\n",
                       labelW, y, plotW, rowH,
                       rows[r].first % 2 ? "#f4f4f4" : "#fafafa");
    os << llvm::format("<text class=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                       "text-anchor=\"end\">",
                       perRank ? "rank" : "stage", labelW - 8,
                       y + rowH / 2 + 4);
    llvm::printHTMLEscaped(rows[r].second, os);
    os << "</text>\n";
  }
  // The actions, on every row of their stage.
  for (const Event &e : result.events) {
    if (e.end <= e.start || e.stage < 0 || e.stage >= numStages)
      continue;
    bool comm = !isCompute(e.kind);
    for (int r : stageRows[e.stage]) {
      double y = top + r * rowH + (rowH - barH) / 2;
      double h = comm ? barH / 2 : barH;
      if (comm)
        y += barH / 4;
      os << llvm::format("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                         "height=\"%.1f\" fill=\"%s\"",
                         x(e.start), y, std::max(x(e.end) - x(e.start), 0.05),
                         h, colourOf(e.kind).fill);
      if (!comm)
        os << " stroke=\"white\" stroke-width=\"0.3\"";
      os << "><title>" << eventName(e)
         << llvm::format(" %.3f-%.3f ms", e.start * 1e3, e.end * 1e3)
         << "</title></rect>\n";
    }
  }
  // The time axis.
  os << llvm::format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"black\"/>\n",
                     labelW, axisY, labelW + plotW, axisY);
  double step = tickStep(span, 10);
  for (double t = 0; t <= span * (1 + 1e-9); t += step) {
    os << llvm::format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                       "y2=\"%.1f\" stroke=\"black\"/>\n",
                       x(t), axisY, x(t), axisY + 5);
    os << llvm::format("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                       x(t), axisY + 18)
       << formatTime(t, step) << "</text>\n";
  }
  // The legend.
  double lx = labelW;
  for (ActionKind kind :
       {ActionKind::Forward, ActionKind::BackwardInput,
        ActionKind::BackwardWeight, ActionKind::SendActivation,
        ActionKind::AllReduceGrads, ActionKind::OptimizerStep}) {
    Colour c = colourOf(kind);
    os << llvm::format("<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" "
                       "height=\"12\" fill=\"%s\"/>\n",
                       lx, legendY - 10, c.fill);
    os << llvm::format("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 16,
                       legendY, c.label);
    lx += 16 + 7.0 * std::strlen(c.label) + 20;
  }
  os << "</svg>\n";
}
