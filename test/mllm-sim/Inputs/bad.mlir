// Not an mllm module, for errors.test.
module {
  mllm.nonsense
}
