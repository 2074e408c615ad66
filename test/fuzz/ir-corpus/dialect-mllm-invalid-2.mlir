mllm.model @m {
}
