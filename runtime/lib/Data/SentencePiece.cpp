//===- SentencePiece.cpp - tokenisation with a SentencePiece model --------===//
//
// Compiled only when libsentencepiece was found (MLLM_DATA_HAVE_SENTENCEPIECE).
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/data/Tokenizer.h"

#include <sentencepiece_processor.h>

using namespace mllm::runtime::data;

namespace {

class SentencePieceTokenizer final : public Tokenizer {
public:
  sentencepiece::SentencePieceProcessor processor;

  llvm::Error encode(llvm::StringRef text,
                     std::vector<int64_t> &out) const override {
    std::vector<int> ids;
    auto status =
        processor.Encode(std::string_view(text.data(), text.size()), &ids);
    if (!status.ok())
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "SentencePiece: " + status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
    return llvm::Error::success();
  }
  std::string decode(llvm::ArrayRef<int64_t> ids) const override {
    std::vector<int> pieces;
    for (int64_t id : ids)
      if (id >= 0 && id < processor.GetPieceSize())
        pieces.push_back(static_cast<int>(id));
    return processor.DecodeIds(pieces);
  }
  std::optional<int64_t> eos() const override {
    int id = processor.eos_id();
    return id >= 0 ? std::optional<int64_t>(id) : std::nullopt;
  }
  int64_t size() const override { return processor.GetPieceSize(); }
};

} // namespace

llvm::Expected<std::unique_ptr<Tokenizer>>
mllm::runtime::data::loadSentencePiece(llvm::StringRef modelPath) {
  auto tokenizer = std::make_unique<SentencePieceTokenizer>();
  auto status = tokenizer->processor.Load(
      std::string_view(modelPath.data(), modelPath.size()));
  if (!status.ok())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cannot load SentencePiece model '" +
                                       modelPath + "': " + status.ToString());
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}
