//===- Parallel.cpp - the parallel block and its consistency checks -------===//
//
// Per-part TP/PP/CP degrees, DP derivation and the rules a plan must obey
// before any cost model runs: world size, head divisibility by TP, TP inside
// a node, at least one block per stage, explicit stage lists, CP tokens.
//
//===----------------------------------------------------------------------===//
#include "SemaImpl.h"
#include "mllm/Dialect/MLLM/IR/Rules.h"

#include "llvm/ADT/StringExtras.h"

using namespace mllm;
using namespace mllm::sema;

namespace {
/// Tokens per rank below which context parallelism is refused: one attention
/// block of the balancer (docs/masks.md).
constexpr int64_t kMinTokensPerCPRank = 128;
} // namespace

/// Checks one part's degrees against its architecture and the cluster.
static bool checkPart(Sema &sema, const spec::PartParallel &p,
                      const spec::ArchConfig &c, const spec::Job &job,
                      bool isLLM, Fields &f) {
  Diagnostics &diags = sema.diags;
  auto at = [&](llvm::StringRef field) {
    const ast::Field *fd = f.get(field);
    return fd ? fd->value->range : p.loc;
  };
  bool ok = true;
  if (c.heads % p.tp != 0) {
    diags.error(at("tp")) << "tp " << p.tp << " does not divide the " << c.heads
                          << " attention heads of '" << p.part << "'";
    ok = false;
  } else if (c.kvHeads % p.tp != 0 && p.tp % c.kvHeads != 0) {
    diags.error(at("tp")) << "tp " << p.tp << " and the " << c.kvHeads
                          << " kv_heads of '" << p.part
                          << "' must divide one another";
    ok = false;
  }
  if (p.tp > job.cluster.gpusPerNode) {
    diags.error(at("tp")) << "tp " << p.tp << " exceeds the "
                          << job.cluster.gpusPerNode
                          << " GPUs of a node; tensor parallelism stays "
                             "within a node";
    ok = false;
  }
  if (p.autoStages() && !p.stages.empty()) {
    diags.error(at("stages")) << "'stages' fixes the stage count; it cannot be "
                                 "combined with 'pp = auto'";
    ok = false;
  }
  if (p.pp > c.layers) {
    diags.error(at("pp")) << "pp " << p.pp << " exceeds the " << c.layers
                          << " blocks of '" << p.part
                          << "'; every stage needs at least one block";
    ok = false;
  }
  if (!p.stages.empty() && !p.autoStages()) {
    if ((int64_t)p.stages.size() != p.pp) {
      diags.error(at("stages"))
          << "'stages' lists " << p.stages.size() << " stages but pp is "
          << p.pp << (f.get("pp") ? "" : " (the default)")
          << "; set 'pp = " << p.stages.size() << ";'";
      ok = false;
    } else {
      // Entries of at most kMaxLayers, at most kMaxDegree of them: the sum
      // cannot overflow.
      int64_t sum =
          *bounds::sum(p.stages, bounds::kMaxLayers * bounds::kMaxDegree);
      if (sum != c.layers) {
        diags.error(at("stages"))
            << "'stages' places " << sum << " blocks but '" << p.part
            << "' has " << c.layers << " ("
            << (sum < c.layers ? "drops " : "duplicates ")
            << std::abs(sum - c.layers) << ")";
        ok = false;
      }
    }
  }
  if (auto error = rules::contextParallelPart(p.part, isLLM, p.cp)) {
    diags.error(at("cp")) << *error;
    ok = false;
  } else if (p.cp > 1) {
    if (job.data.seqLen / p.cp < kMinTokensPerCPRank) {
      diags.error(at("cp"))
          << "cp " << p.cp << " leaves " << job.data.seqLen / p.cp
          << " tokens per rank of a " << job.data.seqLen
          << "-token sequence; each rank needs at least "
          << kMinTokensPerCPRank;
      ok = false;
    }
  }
  return ok;
}

bool Sema::resolveParallel(const ast::Block *block, spec::Job &job) {
  spec::Parallel &par = job.parallel;
  const spec::Model &model = job.model;
  std::vector<std::string> partNames;
  for (const spec::Encoder &e : model.encoders)
    partNames.push_back(e.name);
  partNames.push_back(model.llm.name);

  llvm::StringMap<const ast::Block *> byName;
  bool ok = true;
  Fields top(*this, "parallel");
  if (block) {
    par.loc = block->range;
    checkBlock(*block, {parallelSchema()}, {"*"}, "parallel", Bare);
    top.add(*block, parallelSchema());
    for (const auto &nested : block->blocks) {
      llvm::StringRef name = nested->kind.name;
      if (!llvm::is_contained(partNames, name)) {
        auto diag = diags.error(nested->kind.range)
                    << "'" << name << "' is not a part of model '" << model.name
                    << "'";
        llvm::StringRef encoder = name;
        if (encoder.consume_back("_projector") &&
            llvm::is_contained(partNames, encoder))
          diag << "; a projector runs on the last stage of its encoder: "
                  "give the degrees to '"
               << encoder << "'";
        else if (std::string hint = suggest(name, partNames); !hint.empty())
          diag << hint;
        else
          diag << "; its parts are " << llvm::join(partNames, ", ");
        ok = false;
        continue;
      }
      auto [it, inserted] = byName.try_emplace(name, nested.get());
      if (!inserted) {
        auto diag = diags.error(nested->kind.range)
                    << "second parallel block for '" << name << "'";
        diags.note(diag, it->second->kind.range, "first one is here");
        ok = false;
      }
    }
    if (top.has("dp")) {
      Value v = top.value("dp");
      if (v.kind == Value::Kind::Ident && v.text == "auto") {
      } else if (v.valid()) {
        ok &= top.readInt("dp", par.dp, 1, bounds::kMaxWorldSize);
        par.dpDerived = false;
      } else {
        ok = false;
      }
    }
    ok &= top.readDialectEnum("layout", par.layout);
    ok &= top.readDialectEnum("cp_balance", par.cpBalance);
    ok &= top.readDialectEnum("partition", par.partition);
  }

  bool anyStages = false;
  for (size_t i = 0; i < partNames.size(); ++i) {
    bool isLLM = i + 1 == partNames.size();
    const spec::ArchConfig &c =
        isLLM ? model.llm.config : model.encoders[i].config;
    spec::PartParallel p;
    p.part = partNames[i];
    p.loc = isLLM ? model.llm.loc : model.encoders[i].loc;
    const ast::Block *pb = byName.lookup(p.part);
    Fields f(*this, "parallel block of '" + p.part + "'");
    if (pb) {
      p.loc = pb->range;
      checkBlock(*pb, {partParallelSchema()}, {},
                 "parallel block of '" + p.part + "'", Bare);
      f.add(*pb, partParallelSchema());
      constexpr int64_t maxDegree = bounds::kMaxDegree;
      bool partOk = f.readInt("tp", p.tp, 1, maxDegree);
      Value pp = f.value("pp");
      if (pp.kind == Value::Kind::Ident && pp.text == "auto")
        p.pp = 0;
      else
        partOk &= f.readInt("pp", p.pp, 1, maxDegree);
      partOk &= f.readInt("cp", p.cp, 1, maxDegree);
      partOk &= f.readIntList("stages", p.stages, bounds::kMaxLayers);
      ok &= partOk;
      if (partOk)
        ok &= checkPart(*this, p, c, job, isLLM, f);
      if (f.has("stages")) {
        anyStages = true;
        if (top.has("partition") &&
            par.partition != spec::Partition::Explicit) {
          auto diag = diags.error(f.get("stages")->name.range)
                      << "'stages' fixes the partition, but the policy is not "
                         "'explicit'";
          diags.note(diag, top.get("partition")->value->range,
                     "policy set here; write 'partition = explicit;'");
          ok = false;
        }
      }
    }
    par.parts.push_back(std::move(p));
  }
  if (anyStages && !top.has("partition"))
    par.partition = spec::Partition::Explicit;
  if (ok && par.partition == spec::Partition::Explicit)
    for (const spec::PartParallel &p : par.parts)
      if (p.pp > 1 && p.stages.empty()) {
        diags.error(p.loc) << "partition is 'explicit' but '" << p.part
                           << "' (pp " << p.pp << ") has no 'stages' list";
        ok = false;
      }
  if (!ok)
    return false;

  // GPUs one data-parallel replica needs. The degrees are bounded, but not
  // the number of parts: saturate rather than wrap (the result is compared
  // with the world size only).
  auto plus = [](int64_t a, int64_t b) {
    return bounds::add(a, b).value_or(INT64_MAX);
  };
  auto times = [](int64_t a, int64_t b) {
    return bounds::mul(a, b).value_or(INT64_MAX);
  };
  int64_t perReplica = 0;
  std::string breakdown;
  auto describe = [](const spec::PartParallel &p) {
    return p.part + " " + std::to_string(p.tp) + "x" +
           (p.autoStages() ? std::string("1") : std::to_string(p.pp)) + "x" +
           std::to_string(p.cp);
  };
  if (par.layout == spec::Layout::Chain) {
    // One chain of stages on tp GPUs each; its rules (pp = auto, one tp, no
    // CP) are mllm-partition's to report, at each part that breaks one:
    // arithmetic on a broken chain would name the wrong mistake.
    const spec::PartParallel &first = par.parts.front();
    if (llvm::any_of(par.parts, [&](const spec::PartParallel &p) {
          return !p.autoStages() || p.tp != first.tp || p.cp != 1;
        }))
      return true;
    perReplica = first.tp;
    breakdown = "a chain of stages of tp " + std::to_string(first.tp);
  } else if (par.layout == spec::Layout::Colocated && !model.encoders.empty()) {
    const spec::PartParallel &first = par.parts.front();
    for (size_t i = 1; i + 1 < par.parts.size(); ++i) {
      const spec::PartParallel &p = par.parts[i];
      if (p.tp != first.tp || p.pp != first.pp || p.cp != first.cp) {
        auto diag = diags.error(p.loc)
                    << "colocated encoders share their GPUs and need equal "
                       "tp/pp/cp; '"
                    << p.part << "' has " << p.tp << "/" << p.pp << "/" << p.cp
                    << " but '" << first.part << "' has " << first.tp << "/"
                    << first.pp << "/" << first.cp;
        diags.note(diag, first.loc, "'" + first.part + "' configured here");
        return false;
      }
    }
    perReplica = plus(first.gpus(), par.parts.back().gpus());
    breakdown = "encoders (colocated) " + std::to_string(first.gpus()) + " + " +
                describe(par.parts.back());
  } else {
    llvm::ListSeparator sep(" + ");
    for (const spec::PartParallel &p : par.parts) {
      perReplica = plus(perReplica, p.gpus());
      breakdown += llvm::StringRef(sep).str() + describe(p);
    }
  }
  int64_t world = job.cluster.worldSize();
  llvm::SMRange where = block ? block->range : job.cluster.loc;
  bool anyAuto = llvm::any_of(
      par.parts, [](const spec::PartParallel &p) { return p.autoStages(); });
  if (anyAuto) {
    // The partitioner spends whatever one replica's share of the cluster
    // leaves; it must at least hold one stage of every part.
    if (par.dpDerived) {
      diags.error(where.isValid() ? where : job.cluster.loc)
          << "with 'pp = auto', give 'dp' explicitly: the partitioner "
             "spends the cluster's "
          << world << " GPUs / dp on pipeline stages";
      return false;
    }
    if (world % par.dp != 0) {
      // Replicas are alike: each gets world / dp GPUs. Name the nearest
      // divisors whose share still holds a replica.
      int64_t below = 0, above = 0;
      int64_t most = world / std::max<int64_t>(perReplica, 1);
      for (int64_t d = std::min(par.dp - 1, most); d >= 1 && !below; --d)
        if (world % d == 0)
          below = d;
      for (int64_t d = par.dp + 1; d <= most && !above; ++d)
        if (world % d == 0)
          above = d;
      auto diag = diags.error(top.get("dp")->value->range)
                  << "dp " << par.dp << " does not divide the cluster's "
                  << world << " GPUs, which replicas share equally";
      if (below || above)
        diag << "; use dp = " << (below ? below : above)
             << (below && above ? " or " + std::to_string(above) : "")
             << ", whose replicas hold the " << perReplica << " GPUs one needs";
      diags.note(diag, job.cluster.loc, "cluster declared here");
      return false;
    }
    if (times(perReplica, par.dp) > world) {
      int64_t share = world / par.dp;
      auto diag = diags.error(top.get("dp")->value->range)
                  << "dp " << par.dp << " leaves " << share
                  << (share == 1 ? " GPU" : " GPUs")
                  << " per replica, but one replica needs at least "
                  << perReplica << " (" << breakdown
                  << (par.layout == spec::Layout::Chain
                          ? ", at least one stage)"
                          : ", one stage for each 'pp = auto' part)");
      diags.note(diag, job.cluster.loc, "cluster declared here");
      return false;
    }
    return true;
  }
  if (par.dpDerived) {
    if (world % perReplica != 0) {
      auto diag = diags.error(where.isValid() ? where : job.cluster.loc)
                  << "the cluster's " << world << " GPUs (" << job.cluster.nodes
                  << (job.cluster.nodes == 1 ? " node x " : " nodes x ")
                  << job.cluster.gpusPerNode << ") are not a multiple of the "
                  << perReplica << " GPUs one replica needs (" << breakdown
                  << ", as tp x pp x cp)";
      // Without a parallel block the error is at the cluster already.
      if (block)
        diags.note(diag, job.cluster.loc, "cluster declared here");
      else
        diags.note(diag, job.cluster.loc,
                   "change nodes or gpus_per_node, or add a 'parallel' "
                   "block with the degrees that fit");
      return false;
    }
    par.dp = world / perReplica;
  } else if ((double)par.dp * (double)perReplica > (double)world ||
             world % par.dp != 0) {
    // Replicas share the cluster equally (each world / dp GPUs), so a dp
    // that does not divide it cannot leave the rest idle either.
    auto diag = diags.error(top.get("dp")->value->range)
                << "dp " << par.dp << " x " << perReplica
                << " GPUs per replica (" << breakdown
                << ") = " << formatNumber((double)par.dp * (double)perReplica)
                << ", but the cluster has " << world << " GPUs";
    if (world % par.dp != 0)
      diag << ", which replicas share equally: use a dp that divides " << world;
    diags.note(diag, job.cluster.loc, "cluster declared here");
    return false;
  } else if (par.dp * perReplica < world) {
    // As a pp = auto plan that leaves GPUs idle: the plan runs on the
    // ranks up to its last stage's (mllm-run says how many to start; the
    // rank map may leave gaps that keep TP groups inside a node).
    int64_t used = par.dp * perReplica;
    auto diag = diags.warning(top.get("dp")->value->range)
                << "dp " << par.dp << " x " << perReplica
                << " GPUs per replica (" << breakdown << ") uses " << used
                << " of the cluster's " << world << " GPUs; " << world - used
                << (world - used == 1 ? " stays" : " stay") << " idle";
    if (world % perReplica == 0)
      diag << " (dp = " << world / perReplica << " uses them all)";
    diags.note(diag, job.cluster.loc, "cluster declared here");
  }
  // A plan's schedule lists every microbatch of every stage (Bounds.h). The
  // tighter bound of a schedule in IR (--emit=sched, --emit=llvm) is
  // sched-generate's to check.
  int64_t stages = 0;
  for (const spec::PartParallel &p : par.parts)
    stages = plus(stages, p.pp);
  if (!bounds::scheduleSteps(stages, job.data.microbatches,
                             bounds::kMaxPlanSteps)) {
    auto diag = diags.error(job.data.loc)
                << stages << " pipeline stages x " << job.data.microbatches
                << " microbatches exceed the " << bounds::kMaxPlanSteps
                << " steps a plan's schedule holds; lower 'microbatches' or "
                   "pp";
    diags.note(diag, where.isValid() ? where : job.cluster.loc,
               "stages set here");
    return false;
  }
  const spec::PartParallel &llm = par.parts.back();
  if (job.data.microbatches < llm.pp)
    diags.warning(job.data.loc)
        << job.data.microbatches << " microbatches cannot fill the LLM's "
        << llm.pp << " pipeline stages; the pipeline will mostly idle";
  return true;
}
