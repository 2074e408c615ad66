//===- Summary.cpp - human-readable job summary ---------------------------===//
#include "Summary.h"

#include "mllm/Model/Layers.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

using namespace mllm;

static std::string human(double n) {
  const char *suffix[] = {"", "K", "M", "B", "T"};
  int i = 0;
  while (n >= 1000 && i < 4) {
    n /= 1000;
    ++i;
  }
  char buf[32];
  snprintf(buf, sizeof(buf), i ? "%.2f%s" : "%.0f%s", n, suffix[i]);
  return buf;
}

static std::string bytes(double n) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.0f GiB", n / (1024.0 * 1024 * 1024));
  return buf;
}

void mllm::printSummary(const spec::Job &job, llvm::raw_ostream &os) {
  const spec::Model &m = job.model;
  struct Row {
    std::string part, instance, arch;
    int64_t layers, hidden, params;
    bool frozen;
    std::string recompute;
  };
  std::vector<Row> rows;
  int64_t total = 0, trainable = 0;
  auto add = [&](Row r) {
    total += r.params;
    if (!r.frozen)
      trainable += r.params;
    rows.push_back(std::move(r));
  };
  for (const spec::Encoder &e : m.encoders) {
    add({e.name, e.config.instance, spec::toString(e.config.arch),
         e.config.layers, e.config.hidden,
         model::totalParams(model::expand(e.config)), e.frozen,
         spec::toString(e.recompute)});
    const spec::Projector &p = e.projector;
    std::string shape =
        (p.kind == spec::ProjectorKind::MLP ? "mlp " : "linear ") +
        std::to_string(p.in) + "->" + std::to_string(p.out);
    add({e.name + "_projector", shape, "projector",
         p.kind == spec::ProjectorKind::MLP ? 2 : 1, p.out,
         model::totalParams(model::expand(p)), p.frozen, "-"});
  }
  add({m.llm.name, m.llm.config.instance, "decoder", m.llm.config.layers,
       m.llm.config.hidden, model::totalParams(model::expand(m.llm.config)),
       m.llm.frozen, spec::toString(m.llm.recompute)});

  os << "model '" << m.name << "': " << human((double)total) << " parameters, "
     << human((double)trainable) << " trainable ("
     << llvm::format("%.1f", total ? 100.0 * trainable / total : 0.0) << "%)\n";
  os << llvm::format("  %-20s %-22s %-15s %6s %6s %9s  %-9s %s\n", "part",
                     "instance", "kind", "layers", "width", "params", "status",
                     "recompute");
  for (const Row &r : rows)
    os << llvm::format("  %-20s %-22s %-15s %6lld %6lld %9s  %-9s %s\n",
                       r.part.c_str(), r.instance.c_str(), r.arch.c_str(),
                       (long long)r.layers, (long long)r.hidden,
                       human((double)r.params).c_str(),
                       r.frozen ? "frozen" : "trainable", r.recompute.c_str());

  const spec::Data &d = job.data;
  os << "data: " << d.seqLen << " tokens per sequence = ";
  if (d.packing > 1)
    os << d.packing << " packed samples x (";
  os << d.textTokens << " text";
  for (const spec::ModalityInput &in : d.inputs) {
    os << " + " << in.encoder << " " << in.tokens;
    if (in.items > 1)
      os << "x" << in.items;
  }
  if (d.packing > 1)
    os << ")";
  os << "; microbatch " << d.microbatchSize << " x " << d.microbatches
     << " microbatches\n";

  const spec::Cluster &c = job.cluster;
  os << "cluster: " << c.nodes << " node" << (c.nodes > 1 ? "s" : "") << " x "
     << c.gpusPerNode << " " << c.gpu.name << " = " << c.worldSize()
     << (c.worldSize() == 1 ? " GPU (" : " GPUs (")
     << bytes((double)c.gpu.memory) << ", "
     << llvm::format("%.1f", c.gpu.peakFlops / 1e12) << " TFLOPS bf16 each)\n";

  const spec::Parallel &p = job.parallel;
  // The dialect's spellings: one name per enum case, no table here.
  os << "parallel: dp " << p.dp << (p.dpDerived ? " (derived)" : "") << ", "
     << stringifyEncoderLayout(p.layout) << ", partition "
     << stringifyPartitionPolicy(p.partition) << ", cp balance "
     << stringifyCPBalance(p.cpBalance) << "\n";
  for (const spec::PartParallel &part : p.parts) {
    std::string pp = part.autoStages() ? "auto" : std::to_string(part.pp);
    os << llvm::format("  %-20s tp %-3lld pp %-4s cp %-3lld", part.part.c_str(),
                       (long long)part.tp, pp.c_str(), (long long)part.cp);
    if (part.autoStages())
      os << " -> " << part.gpus() << " GPU" << (part.gpus() > 1 ? "s" : "")
         << " per stage, stages chosen by the partitioner";
    else
      os << " -> " << part.gpus() << " GPU" << (part.gpus() > 1 ? "s" : "")
         << " per replica";
    if (!part.stages.empty()) {
      os << ", stages [";
      llvm::ListSeparator sep;
      for (int64_t s : part.stages)
        os << sep << s;
      os << "]";
    }
    os << "\n";
  }
  const spec::Train &t = job.train;
  os << "train: " << t.steps << (t.steps == 1 ? " step, " : " steps, ")
     << stringifyOptimizer(t.optimizer) << " lr " << llvm::format("%g", t.lr)
     << ", " << stringifyPrecision(t.precision) << ", seed " << t.seed << "\n";
}
