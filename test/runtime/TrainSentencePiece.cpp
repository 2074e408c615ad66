//===- TrainSentencePiece.cpp - a small SentencePiece model for tests -----===//
//
// mllm-train-sentencepiece CORPUS PREFIX VOCAB: trains a BPE model of VOCAB
// pieces on the text file CORPUS and writes PREFIX.model, so that the
// tests of `mllm-run --tokenizer` make their model instead of shipping one.
//
//===----------------------------------------------------------------------===//

#include <sentencepiece_trainer.h>

#include <cstdio>
#include <string>

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: mllm-train-sentencepiece CORPUS PREFIX VOCAB\n");
    return 2;
  }
  auto status = sentencepiece::SentencePieceTrainer::Train(
      std::string("--input=") + argv[1] + " --model_prefix=" + argv[2] +
      " --vocab_size=" + argv[3] +
      " --model_type=bpe --minloglevel=2 --num_threads=1");
  if (!status.ok()) {
    std::fprintf(stderr, "mllm-train-sentencepiece: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}
