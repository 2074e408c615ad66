mllm.cluster 1 x 4 "a40" {peak_flops = 1.0e14, memory = 1024, memory_bandwidth = 1.0e11, intra_node_bandwidth = 1.0e10, inter_node_bandwidth = 0.0}
