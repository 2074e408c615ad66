//===- Spec.cpp - names of the resolved-spec enums ------------------------===//
#include "mllm/Sema/Spec.h"

using namespace mllm::spec;

const char *mllm::spec::toString(Arch a) {
  switch (a) {
  case Arch::Decoder:
    return "decoder";
  case Arch::VisionEncoder:
    return "vision_encoder";
  case Arch::AudioEncoder:
    return "audio_encoder";
  }
  return "?";
}

const char *mllm::spec::toString(Norm n) {
  return n == Norm::RMSNorm ? "rmsnorm" : "layernorm";
}

const char *mllm::spec::toString(Activation a) {
  switch (a) {
  case Activation::SwiGLU:
    return "swiglu";
  case Activation::GeGLU:
    return "geglu";
  case Activation::GELU:
    return "gelu";
  case Activation::ReLU:
    return "relu";
  case Activation::SiLU:
    return "silu";
  }
  return "?";
}

const char *mllm::spec::toString(Position p) {
  switch (p) {
  case Position::RoPE:
    return "rope";
  case Position::Learned:
    return "learned";
  case Position::Sinusoidal:
    return "sinusoidal";
  case Position::ALiBi:
    return "alibi";
  case Position::None:
    return "none";
  }
  return "?";
}

const char *mllm::spec::toString(Recompute r) {
  switch (r) {
  case Recompute::None:
    return "none";
  case Recompute::Full:
    return "full";
  case Recompute::Selective:
    return "selective";
  }
  return "?";
}
