//===- Geometry.cpp - what the plan says one sample may hold --------------===//

#include "mllm/runtime/data/Geometry.h"

#include "mllm/runtime/Plan.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::data;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

int DataGeometry::find(llvm::StringRef name) const {
  for (size_t e = 0; e < encoders.size(); ++e)
    if (encoders[e].name == name)
      return static_cast<int>(e);
  return -1;
}

int64_t data::audioWindows(int64_t encoderTokensPerItem, int64_t frames) {
  // Kernel 3, stride 2, padding 1: (frames + 2 - 3) / 2 + 1 output frames.
  int64_t perWindow = frames > 0 ? (frames - 1) / 2 + 1 : 1;
  return std::max<int64_t>(1, encoderTokensPerItem / perWindow);
}

llvm::Expected<DataGeometry> data::dataGeometry(const Plan &plan) {
  auto spec = sequenceSpec(plan);
  if (!spec)
    return spec.takeError();
  DataGeometry g;
  g.seqLen = plan.data.seqLen;
  g.sequences = plan.data.microbatchSize;
  g.microbatches = plan.data.microbatches;
  g.dp = plan.job.dp;
  g.packing = plan.data.packing;
  g.textMask = spec->textMask;
  g.prefixFraction = spec->prefixFraction;
  g.numModalities = static_cast<int>(spec->modalities.size());
  if (plan.parts.empty() || !plan.llm().isLLM)
    return fail("the plan has no LLM");
  for (const PlanLayerGroup &group : plan.llm().groups)
    if (group.kind == "token_embedding" || group.kind == "lm_head")
      g.vocab = std::max(g.vocab, group.config.vocab);
  if (g.vocab <= 0)
    return fail("the LLM '" + plan.llm().name + "' has no vocabulary");

  int modality = 0;
  for (const PlanPart &part : plan.parts) {
    if (part.isLLM)
      continue;
    const kernels::ModalitySpec &m = spec->modalities[modality];
    int index = modality++;
    if (m.items == 0 || m.tokensPerItem == 0)
      continue;
    EncoderInput in;
    in.name = part.name;
    in.instance = part.instance;
    in.modality = index;
    in.maxItems = m.items;
    in.tokensPerItem = m.tokensPerItem;
    in.placement = m.placement;
    in.positions = m.positions;
    in.causal = m.mask == kernels::ItemMask::Causal;
    if (part.groups.empty())
      return fail("encoder '" + part.name + "' has no layers");
    const PlanLayerGroup &first = part.groups.front();
    const LayerConfig &c = first.config;
    if (first.kind == "patch_embedding") {
      in.kind = MediaKind::Image;
      in.channels = c.channels;
      in.temporal = std::max<int64_t>(c.temporalPatch, 1);
      in.height = c.imageHeight;
      in.width = c.imageWidth;
      if (in.channels != 1 && in.channels != 3)
        return fail("encoder '" + part.name + "' reads " +
                    llvm::Twine(in.channels) +
                    "-channel images; image files give 1 or 3");
    } else if (first.kind == "audio_frontend") {
      in.kind = MediaKind::Audio;
      in.frames = c.frames;
      in.melBins = c.melBins;
      in.hopSeconds = c.hop;
      int64_t merge = part.projector ? part.projector->merge : 1;
      const PlanInput *input = plan.data.findInput(part.name);
      int64_t own =
          input ? input->encoderTokensPerItem(merge) : in.tokensPerItem * merge;
      in.windows = audioWindows(own, c.frames);
    } else {
      return fail("encoder '" + part.name + "' starts with a '" + first.kind +
                  "' layer; real data feeds a patch embedding or an audio "
                  "front end");
    }
    if (in.floatsPerItem() <= 0)
      return fail("encoder '" + part.name + "' has an empty input shape");
    g.encoders.push_back(std::move(in));
  }
  return g;
}
