//===- Checkpoint.cpp - training state in safetensors files ---------------===//
//
// Tensor names: `model.NAME` for every parameter a file holds (frozen ones
// included, so the files of a checkpoint are a complete model),
// `optim.NAME.exp_avg` and `optim.NAME.exp_avg_sq` for the moments of
// every trainable one (Adam and AdamW). Metadata: `format`
// (mllm-checkpoint-1), `step`, `plan_hash`, `model`, `optimizer`, `seed`.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/exec/Checkpoint.h"

#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/SafeTensors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

static constexpr const char *kFormat = "mllm-checkpoint-1";

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::vector<CheckpointTensor>
exec::checkpointTensors(llvm::ArrayRef<NamedParam> params,
                        const Optimizer &optimizer) {
  std::vector<CheckpointTensor> tensors;
  for (const NamedParam &p : params)
    tensors.push_back({"model." + p.name, p.param->value.shape,
                       llvm::ArrayRef<float>(p.param->value.data)});
  if (optimizer.hasMoments())
    for (const Optimizer::Slot &s : optimizer.slots()) {
      tensors.push_back({"optim." + s.name + ".exp_avg", s.param->value.shape,
                         llvm::ArrayRef<float>(s.m)});
      tensors.push_back({"optim." + s.name + ".exp_avg_sq",
                         s.param->value.shape, llvm::ArrayRef<float>(s.v)});
    }
  return tensors;
}

/// `plan`'s settings that shape training but not the parameters, as "key
/// value" items joined by ", " (the `training` metadata).
static std::string trainingSettings(const Plan &plan) {
  std::string out;
  llvm::raw_string_ostream(out)
      << llvm::format("lr %g, weight_decay %g, dp %lld, microbatches %lld, "
                      "microbatch_size %lld, seq_len %lld",
                      plan.train.lr, plan.train.weightDecay,
                      static_cast<long long>(plan.job.dp),
                      static_cast<long long>(plan.data.microbatches),
                      static_cast<long long>(plan.data.microbatchSize),
                      static_cast<long long>(plan.data.seqLen));
  return out;
}

llvm::Error exec::writeCheckpoint(llvm::StringRef path, const Plan &plan,
                                  llvm::ArrayRef<NamedParam> params,
                                  const Optimizer &optimizer,
                                  const CheckpointInfo &info) {
  return writeCheckpointTensors(path, plan,
                                checkpointTensors(params, optimizer), info);
}

llvm::Error
exec::writeCheckpointTensors(llvm::StringRef path, const Plan &plan,
                             llvm::ArrayRef<CheckpointTensor> tensors,
                             const CheckpointInfo &info) {
  SafeTensorsWriter w;
  for (const CheckpointTensor &t : tensors)
    w.add(t.name, t.shape, t.data);
  w.setMetadata("format", kFormat);
  w.setMetadata("step", std::to_string(info.step));
  w.setMetadata("plan_hash", planContentHash(plan));
  w.setMetadata("model", plan.job.model);
  w.setMetadata("optimizer", plan.train.optimizer);
  w.setMetadata("seed", std::to_string(info.seed));
  w.setMetadata("model_signature", info.modelSignature);
  w.setMetadata("layers", layersDescription(plan));
  w.setMetadata("training", trainingSettings(plan));
  if (!info.data.empty())
    w.setMetadata("data", info.data);
  return w.write(path);
}

namespace {

/// The files of a checkpoint, opened.
struct Files {
  std::string path;
  std::vector<SafeTensorsFile> files;

  /// The first file holding `name`, or null.
  const SafeTensorsFile *find(llvm::StringRef name) const {
    for (const SafeTensorsFile &f : files)
      if (f.lookup(name))
        return &f;
    return nullptr;
  }
  std::string meta(llvm::StringRef key) const {
    std::optional<llvm::StringRef> v = files.front().metadata(key);
    return v ? v->str() : std::string();
  }
};

/// The safetensors files of `path`: the file, or every `.safetensors` file
/// of the directory, by name (in `names`); a directory without one is an
/// error saying `empty`.
llvm::Expected<std::vector<SafeTensorsFile>>
openSafeTensors(llvm::StringRef path, llvm::StringRef empty,
                std::vector<std::string> &names) {
  if (llvm::sys::fs::is_directory(path)) {
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(path, ec), end; it != end && !ec;
         it.increment(ec))
      if (llvm::StringRef(it->path()).ends_with(".safetensors"))
        names.push_back(it->path());
    if (ec)
      return fail(path + ": " + ec.message());
    if (names.empty())
      return fail(path + ": " + empty);
    llvm::sort(names);
  } else {
    names.push_back(path.str());
  }
  std::vector<SafeTensorsFile> files;
  for (const std::string &name : names) {
    auto file = SafeTensorsFile::open(name);
    if (!file)
      return file.takeError();
    files.push_back(std::move(*file));
  }
  return std::move(files);
}

static std::string shapeText(llvm::ArrayRef<int64_t> dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

llvm::Expected<Files> openCheckpoint(llvm::StringRef path) {
  Files result;
  result.path = path.str();
  std::vector<std::string> names;
  auto files =
      openSafeTensors(path, "a checkpoint directory without shards", names);
  if (!files)
    return files.takeError();
  result.files = std::move(*files);
  for (size_t i = 0; i < result.files.size(); ++i) {
    std::optional<llvm::StringRef> format = result.files[i].metadata("format");
    if (!format || *format != kFormat)
      return fail(names[i] + ": not an mllm checkpoint (format '" +
                  (format ? *format : "") + "', expected '" + kFormat + "')");
    for (const char *key : {"step", "plan_hash"})
      if (result.files[i].metadata(key) != result.files[0].metadata(key))
        return fail(path + ": its shards disagree on '" + key + "' (" +
                    names[0] + " vs " + names[i] + ")");
  }
  return std::move(result);
}

} // namespace

std::string exec::modelSignature(const Model &model) {
  llvm::SHA256 sha;
  sha.update(model.plan().train.optimizer);
  for (const NamedParam &p : model.params) {
    std::string line = "\n" + p.name + (p.param->trainable ? " t" : " f");
    for (int64_t d : cpu::fullShape(p.param->shard, p.param->value.shape))
      line += " " + std::to_string(d);
    sha.update(line);
  }
  return llvm::toHex(sha.final(), /*LowerCase=*/true);
}

std::string exec::layersDescription(const Plan &plan) {
  std::string out;
  llvm::raw_string_ostream os(out);
  auto groups = [&](llvm::StringRef owner,
                    const std::vector<PlanLayerGroup> &list) {
    for (const PlanLayerGroup &g : list) {
      os << owner << "." << g.name << " " << g.kind << " x" << g.count;
      for (const LayerConfigKey &k : layerConfigKeys()) {
        if (!k.isSet(g.config))
          continue;
        os << " " << k.name << "=";
        switch (k.type) {
        case LayerConfigKey::Int:
          os << g.config.*k.intField;
          break;
        case LayerConfigKey::Bool:
          os << (g.config.*k.boolField ? "true" : "false");
          break;
        case LayerConfigKey::Float:
          os << llvm::format("%.17g", g.config.*k.floatField);
          break;
        case LayerConfigKey::String:
          os << g.config.*k.stringField;
          break;
        }
      }
      os << "\n";
    }
  };
  for (const PlanPart &part : plan.parts) {
    groups(part.name, part.groups);
    if (part.projector)
      groups(part.projector->name, part.projector->groups);
  }
  return out;
}

/// The first line of layersDescription() that differs between `written`
/// (a checkpoint's) and `plan`'s, as "'A' there, 'B' in this run's plan".
/// `sharedOnly` (weights loaded by name, --init): only the groups both
/// have, compared by name and without their counts, whose extra layers
/// load as missing parameters.
static std::optional<std::string> firstLayerDifference(llvm::StringRef written,
                                                       const Plan &plan,
                                                       bool sharedOnly) {
  llvm::SmallVector<llvm::StringRef> theirs, ours;
  std::string mine = layersDescription(plan);
  written.split(theirs, '\n', -1, false);
  llvm::StringRef(mine).split(ours, '\n', -1, false);
  auto describe = [](llvm::StringRef a, llvm::StringRef b) {
    return ("'" + a + "' there, '" + b + "' in this run's plan").str();
  };
  if (!sharedOnly) {
    for (size_t i = 0; i < std::max(theirs.size(), ours.size()); ++i) {
      llvm::StringRef a = i < theirs.size() ? theirs[i] : "(none)";
      llvm::StringRef b = i < ours.size() ? ours[i] : "(none)";
      if (a != b)
        return describe(a, b);
    }
    return std::nullopt;
  }
  // "part.group kind xN config...": the group's name, and the rest without
  // its count.
  auto unCounted = [](llvm::StringRef line) {
    auto [name, rest] = line.split(' ');
    auto [kind, afterKind] = rest.split(' ');
    auto [count, config] = afterKind.split(' ');
    return std::make_pair(name, (kind + " " + config).str());
  };
  llvm::StringMap<llvm::StringRef> theirLine; // By group name.
  for (llvm::StringRef line : theirs)
    theirLine[unCounted(line).first] = line;
  for (llvm::StringRef line : ours) {
    auto [name, rest] = unCounted(line);
    auto it = theirLine.find(name);
    if (it != theirLine.end() && unCounted(it->second).second != rest)
      return describe(it->second, line);
  }
  return std::nullopt;
}

llvm::Expected<Restored> exec::readCheckpoint(llvm::StringRef path,
                                              const Plan &plan,
                                              llvm::ArrayRef<NamedParam> params,
                                              Optimizer &optimizer,
                                              llvm::StringRef signature) {
  auto opened = openCheckpoint(path);
  if (!opened)
    return opened.takeError();
  const Files &files = *opened;
  Restored restored;
  // What differs, when it is not this plan's checkpoint: another plan of
  // the same model is re-sharded by name; another model is refused.
  std::string hash = planContentHash(plan);
  restored.otherPlan = files.meta("plan_hash") != hash;
  if (restored.otherPlan && files.meta("model_signature") != signature) {
    std::vector<std::string> diffs;
    if (files.meta("model") != plan.job.model)
      diffs.push_back("model '" + files.meta("model") + "' vs '" +
                      plan.job.model + "'");
    if (files.meta("optimizer") != plan.train.optimizer)
      diffs.push_back("optimizer " + files.meta("optimizer") + " vs " +
                      plan.train.optimizer);
    for (const NamedParam &p : params) {
      const SafeTensorsFile *f = files.find("model." + p.name);
      if (!f) {
        diffs.push_back("parameter '" + p.name + "' is missing");
      } else if (!llvm::equal(
                     f->lookup("model." + p.name)->shape,
                     cpu::fullShape(p.param->shard, p.param->value.shape))) {
        diffs.push_back("parameter '" + p.name + "' has another shape");
      }
      if (diffs.size() >= 3)
        break;
    }
    // Every parameter there in its shape: its weights would load, without
    // the optimizer state that belongs to the other model.
    bool weightsFit = llvm::none_of(diffs, [](llvm::StringRef d) {
      return d.starts_with("parameter ") || d.starts_with("model ");
    });
    if (diffs.empty())
      diffs.push_back("parameters that train or freeze differently");
    return fail(path + ": written for another model (plan " +
                files.meta("plan_hash").substr(0, 12) + ", this run's is " +
                hash.substr(0, 12) + "): " + llvm::join(diffs, "; ") +
                "; start without --resume or use the plan it was written for" +
                (weightsFit
                     ? ", or start from its weights alone with --init " + path
                     : std::string()));
  }
  // Same parameters, other layers (heads, head_dim, positions, ...): the
  // weights would load and mean something else. Checkpoints written before
  // the `layers` metadata have none and are taken as they were.
  if (restored.otherPlan && !files.meta("layers").empty())
    if (std::optional<std::string> differ =
            firstLayerDifference(files.meta("layers"), plan,
                                 /*sharedOnly=*/false))
      return fail(path +
                  ": written for a model whose layers differ: " + *differ +
                  "; start without --resume (--init FILE takes its weights "
                  "by name) or use the plan it was written for");
  int64_t step;
  if (llvm::StringRef(files.meta("step")).getAsInteger(10, step) || step < 0)
    return fail(path + ": no valid 'step' in its metadata");
  restored.step = step;
  restored.data = files.meta("data");
  if (uint64_t seed;
      !llvm::StringRef(files.meta("seed")).getAsInteger(10, seed))
    restored.seed = seed;
  // A TP shard reads the whole tensor and keeps its runs of it.
  auto read = [&](const std::string &name, const cpu::Param<float> &p,
                  float *dst, size_t count) -> llvm::Error {
    const SafeTensorsFile *f = files.find(name);
    if (!f)
      return fail(path + ": tensor '" + name +
                  "' is in none of its files (a shard missing?)");
    // The same count in another shape would load transposed data silently.
    std::vector<int64_t> want = cpu::fullShape(p.shard, p.value.shape);
    if (const TensorInfo *t = f->lookup(name);
        t && !llvm::equal(t->shape, want))
      return fail(path + ": tensor '" + name + "' has shape " +
                  shapeText(t->shape) + " but the model's is " +
                  shapeText(want) +
                  "; the checkpoint is corrupt or of another "
                  "model");
    if (p.shard.dim < 0)
      return f->read(name, dst, count);
    int64_t whole = 1;
    for (int64_t d : p.shard.fullShape)
      whole *= d;
    std::vector<float> full(static_cast<size_t>(whole));
    if (llvm::Error e = f->read(name, full.data(), full.size()))
      return e;
    for (const cpu::ShardRun &r : cpu::shardRuns(p.shard, p.value.shape))
      std::copy_n(full.data() + r.full, r.length, dst + r.local);
    return llvm::Error::success();
  };
  for (const NamedParam &p : params)
    if (llvm::Error e = read("model." + p.name, *p.param, p.param->value.ptr(),
                             p.param->value.data.size()))
      return std::move(e);
  if (optimizer.hasMoments())
    for (Optimizer::Slot &s : optimizer.slots()) {
      if (llvm::Error e = read("optim." + s.name + ".exp_avg", *s.param,
                               s.m.data(), s.m.size()))
        return std::move(e);
      if (llvm::Error e = read("optim." + s.name + ".exp_avg_sq", *s.param,
                               s.v.data(), s.v.size()))
        return std::move(e);
    }
  return restored;
}

/// Metadata `key` of the checkpoint at `path`, if it reads and has it.
static std::optional<std::string> checkpointMetadata(llvm::StringRef path,
                                                     llvm::StringRef key) {
  std::vector<std::string> names;
  auto files = openSafeTensors(path, "no shard", names);
  if (!files) {
    llvm::consumeError(files.takeError());
    return std::nullopt;
  }
  // Every shard carries the run's metadata (readCheckpoint reads the first).
  std::optional<llvm::StringRef> text = files->front().metadata(key);
  if (!text)
    return std::nullopt;
  return text->str();
}

std::optional<uint64_t> exec::checkpointSeed(llvm::StringRef path) {
  std::optional<std::string> text = checkpointMetadata(path, "seed");
  uint64_t seed;
  if (!text || llvm::StringRef(*text).getAsInteger(10, seed))
    return std::nullopt;
  return seed;
}

std::optional<std::string> exec::checkpointSettingsDiffer(llvm::StringRef path,
                                                          const Plan &plan) {
  std::optional<std::string> written = checkpointMetadata(path, "training");
  if (!written)
    return std::nullopt;
  // By key: a list that gains or reorders a setting still compares.
  auto items = [](llvm::StringRef text) {
    llvm::SmallVector<llvm::StringRef> list;
    text.split(list, ", ");
    llvm::StringMap<std::string> byKey;
    for (llvm::StringRef item : list) {
      auto [key, value] = item.split(' ');
      byKey[key] = value.str();
    }
    return byKey;
  };
  llvm::StringMap<std::string> theirs = items(*written);
  std::string mine = trainingSettings(plan);
  llvm::SmallVector<llvm::StringRef> ours;
  llvm::StringRef(mine).split(ours, ", ");
  std::vector<std::string> differ;
  for (llvm::StringRef item : ours) {
    auto [key, value] = item.split(' ');
    auto it = theirs.find(key);
    if (it != theirs.end() && it->second != value)
      differ.push_back((key + " " + it->second + " -> " + value).str());
  }
  if (differ.empty())
    return std::nullopt;
  return llvm::join(differ, ", ");
}

std::optional<std::string> exec::checkpointLayersDiffer(llvm::StringRef path,
                                                        const Plan &plan) {
  std::optional<std::string> written = checkpointMetadata(path, "layers");
  if (!written || written->empty())
    return std::nullopt;
  return firstLayerDifference(*written, plan, /*sharedOnly=*/true);
}

/// The tensor of `files` parameter `param` loads from: `model.NAME`, else
/// `NAME` (its name in `name`, its file in `in`); null when neither is.
static const TensorInfo *weightOf(std::vector<SafeTensorsFile> &files,
                                  llvm::StringRef param, std::string &name,
                                  SafeTensorsFile *&in) {
  for (std::string candidate : {"model." + param.str(), param.str()})
    for (SafeTensorsFile &f : files)
      if (const TensorInfo *t = f.lookup(candidate)) {
        name = std::move(candidate);
        in = &f;
        return t;
      }
  return nullptr;
}

/// Matches the weights at `path` (a file, or a directory of them: the
/// shards of a parallel checkpoint, each tensor whole in one of them, or
/// weights released in pieces) with `params`, calling `load` (if given)
/// for each parameter with the tensor it reads; `unused` gets the file's
/// tensors no parameter matched (optimizer moments aside), `missing` the
/// parameters no tensor did.
using LoadWeight =
    llvm::function_ref<llvm::Error(const NamedParam &, const TensorInfo &,
                                   SafeTensorsFile &, const std::string &name)>;
static llvm::Error matchWeights(llvm::StringRef path,
                                llvm::ArrayRef<NamedParam> params,
                                std::vector<std::string> &unused,
                                std::vector<std::string> &missing,
                                LoadWeight load) {
  std::vector<std::string> names;
  auto opened =
      openSafeTensors(path, "a directory without .safetensors files", names);
  if (!opened)
    return opened.takeError();
  std::vector<SafeTensorsFile> &files = *opened;
  // Shards hold each tensor once; a directory of several checkpoints would
  // silently give the first file's (by name: the oldest).
  llvm::StringMap<size_t> owner;
  for (size_t i = 0; i < files.size(); ++i)
    for (const TensorInfo &t : files[i].tensors()) {
      auto [it, inserted] = owner.try_emplace(t.name, i);
      if (!inserted)
        return fail(path + ": tensor '" + t.name + "' is in both '" +
                    llvm::sys::path::filename(names[it->second]) + "' and '" +
                    llvm::sys::path::filename(names[i]) +
                    "'; a directory must hold the shards of one set of "
                    "weights: name the file to load");
    }
  llvm::StringSet<> used;
  for (const NamedParam &p : params) {
    std::string name;
    SafeTensorsFile *file = nullptr;
    const TensorInfo *t = weightOf(files, p.name, name, file);
    if (!t) {
      missing.push_back(p.name);
      continue;
    }
    if (load)
      if (llvm::Error e = load(p, *t, *file, name))
        return e;
    used.insert(name);
  }
  for (const SafeTensorsFile &f : files)
    for (const TensorInfo &t : f.tensors())
      if (!used.contains(t.name) &&
          !llvm::StringRef(t.name).starts_with("optim."))
        unused.push_back(t.name);
  return llvm::Error::success();
}

llvm::Error exec::initFromWeights(llvm::StringRef path,
                                  llvm::ArrayRef<NamedParam> params,
                                  std::vector<std::string> &unused,
                                  std::vector<std::string> &missing) {
  auto load = [&](const NamedParam &p, const TensorInfo &t,
                  SafeTensorsFile &file,
                  const std::string &name) -> llvm::Error {
    std::vector<int64_t> want =
        cpu::fullShape(p.param->shard, p.param->value.shape);
    if (!llvm::equal(t.shape, want))
      return fail(path + ": tensor '" + name + "' has shape " +
                  shapeText(t.shape) + " but parameter '" + p.name +
                  "' needs " + shapeText(want));
    // A TP shard takes its runs of the whole tensor.
    std::vector<float> full;
    float *dst = p.param->value.ptr();
    if (p.param->shard.dim >= 0) {
      int64_t whole = 1;
      for (int64_t d : want)
        whole *= d;
      full.resize(static_cast<size_t>(whole));
      dst = full.data();
    }
    if (llvm::Error e = file.read(
            name, dst, full.empty() ? p.param->value.data.size() : full.size()))
      return e;
    if (!full.empty())
      for (const cpu::ShardRun &r :
           cpu::shardRuns(p.param->shard, p.param->value.shape))
        std::copy_n(full.data() + r.full, r.length,
                    p.param->value.ptr() + r.local);
    return llvm::Error::success();
  };
  return matchWeights(path, params, unused, missing, load);
}

llvm::Error exec::weightsCoverage(llvm::StringRef path,
                                  llvm::ArrayRef<NamedParam> params,
                                  std::vector<std::string> &unused,
                                  std::vector<std::string> &missing) {
  return matchWeights(path, params, unused, missing, nullptr);
}

llvm::Error exec::checkSameData(const Restored &restored, llvm::StringRef data,
                                llvm::StringRef path,
                                std::optional<uint64_t> seed) {
  if (restored.data.empty() || restored.data == data)
    return llvm::Error::success();
  // A data set's fingerprint covers its order, which follows the seed: the
  // likelier mistake between two of them is a changed --seed (unless the
  // seed is the same: then the data changed).
  std::string hint;
  const bool bothSets =
      restored.seed && llvm::StringRef(restored.data).starts_with("data set") &&
      data.starts_with("data set");
  if (bothSets && (!seed || *seed != *restored.seed))
    hint = " (if it is the same data set: its order follows the seed, and "
           "the checkpoint was trained with seed " +
           std::to_string(*restored.seed) + "; pass --seed " +
           std::to_string(*restored.seed) + " to continue it)";
  else if (bothSets)
    hint = " (the seed is the same, so the data changed: its files, its "
           "order or the lines it skips)";
  return fail(path + ": trained on " + restored.data + ", this run reads " +
              data + hint +
              "; its step is no position in this data: start from its "
              "weights with --init instead of --resume");
}
