//===- Checkpoint.cpp - the trainer's state in safetensors ----------------===//
//
// Tensor names: `model.NAME` for every parameter (frozen ones included, so
// a checkpoint is a complete model), `optim.NAME.exp_avg` and
// `optim.NAME.exp_avg_sq` for the moments of every trainable one (Adam and
// AdamW). Metadata: `format` (mllm-checkpoint-1), `step`, `plan_hash`,
// `model`, `optimizer`, `seed`. docs/checkpoints.md documents them.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/SafeTensors.h"
#include "mllm/runtime/exec/Trainer.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

static constexpr const char *kFormat = "mllm-checkpoint-1";

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Error Trainer::save(llvm::StringRef path) const {
  SafeTensorsWriter w;
  for (const NamedParam &p : model.params)
    w.add("model." + p.name, p.param->value.shape,
          llvm::ArrayRef<float>(p.param->value.data));
  bool adam = model.plan().train.optimizer != "sgd";
  if (adam)
    for (const Moments &m : moments) {
      w.add("optim." + m.name + ".exp_avg", m.param->value.shape,
            llvm::ArrayRef<float>(m.m));
      w.add("optim." + m.name + ".exp_avg_sq", m.param->value.shape,
            llvm::ArrayRef<float>(m.v));
    }
  w.setMetadata("format", kFormat);
  w.setMetadata("step", std::to_string(done));
  w.setMetadata("plan_hash", planContentHash(model.plan()));
  w.setMetadata("model", model.plan().job.model);
  w.setMetadata("optimizer", model.plan().train.optimizer);
  w.setMetadata("seed", std::to_string(seed));
  return w.write(path);
}

llvm::Error Trainer::load(llvm::StringRef path) {
  auto file = SafeTensorsFile::open(path);
  if (!file)
    return file.takeError();
  auto meta = [&](llvm::StringRef key) -> std::string {
    std::optional<llvm::StringRef> v = file->metadata(key);
    return v ? v->str() : std::string();
  };
  if (meta("format") != kFormat)
    return fail(path + ": not an mllm checkpoint (format '" + meta("format") +
                "', expected '" + kFormat + "')");
  // What differs, when it is not this plan's checkpoint.
  std::string hash = planContentHash(model.plan());
  if (meta("plan_hash") != hash) {
    std::vector<std::string> diffs;
    if (meta("model") != model.plan().job.model)
      diffs.push_back("model '" + meta("model") + "' vs '" +
                      model.plan().job.model + "'");
    if (meta("optimizer") != model.plan().train.optimizer)
      diffs.push_back("optimizer " + meta("optimizer") + " vs " +
                      model.plan().train.optimizer);
    for (const NamedParam &p : model.params) {
      const TensorInfo *t = file->lookup("model." + p.name);
      if (!t) {
        diffs.push_back("parameter '" + p.name + "' is missing");
      } else if (!llvm::equal(t->shape, p.param->value.shape)) {
        diffs.push_back("parameter '" + p.name + "' has another shape");
      }
      if (diffs.size() >= 3)
        break;
    }
    if (diffs.empty())
      diffs.push_back("the same model under another plan (parallelism, data "
                      "layout or training settings)");
    return fail(path + ": written for another plan (" + meta("plan_hash") +
                ", this run's is " + hash + "): " + llvm::join(diffs, "; ") +
                "; start without --resume or use the plan it was written for");
  }
  int64_t step;
  if (llvm::StringRef(meta("step")).getAsInteger(10, step) || step < 0)
    return fail(path + ": no valid 'step' in its metadata");
  for (const NamedParam &p : model.params)
    if (llvm::Error e = file->read("model." + p.name, p.param->value.ptr(),
                                   p.param->value.data.size()))
      return e;
  if (model.plan().train.optimizer != "sgd")
    for (Moments &m : moments) {
      if (llvm::Error e = file->read("optim." + m.name + ".exp_avg", m.m.data(),
                                     m.m.size()))
        return e;
      if (llvm::Error e = file->read("optim." + m.name + ".exp_avg_sq",
                                     m.v.data(), m.v.size()))
        return e;
    }
  done = step;
  return llvm::Error::success();
}

llvm::Error Trainer::initFrom(llvm::StringRef path,
                              std::vector<std::string> &unused,
                              std::vector<std::string> &missing) {
  auto file = SafeTensorsFile::open(path);
  if (!file)
    return file.takeError();
  llvm::StringSet<> used;
  for (const NamedParam &p : model.params) {
    std::string name = "model." + p.name;
    const TensorInfo *t = file->lookup(name);
    if (!t) {
      name = p.name;
      t = file->lookup(name);
    }
    if (!t) {
      missing.push_back(p.name);
      continue;
    }
    if (!llvm::equal(t->shape, p.param->value.shape)) {
      auto shape = [](llvm::ArrayRef<int64_t> dims) {
        std::string s = "[";
        for (size_t i = 0; i < dims.size(); ++i)
          s += (i ? ", " : "") + std::to_string(dims[i]);
        return s + "]";
      };
      return fail(path + ": tensor '" + name + "' has shape " +
                  shape(t->shape) + " but parameter '" + p.name + "' needs " +
                  shape(p.param->value.shape));
    }
    if (llvm::Error e =
            file->read(name, p.param->value.ptr(), p.param->value.data.size()))
      return e;
    used.insert(name);
  }
  for (const TensorInfo &t : file->tensors())
    if (!used.contains(t.name) &&
        !llvm::StringRef(t.name).starts_with("optim."))
      unused.push_back(t.name);
  return llvm::Error::success();
}
