# Included by the top-level CMakeLists.txt: CMake wants a language enabled in
# the directory above every target that uses it, and the CUDA backend spans
# kernels/, runtime/, test/ and bench/. Finds nvcc (also where it is not on
# PATH), enables CUDA, finds cuBLASLt and NCCL, and sets MLLM_HAVE_CUDA and
# MLLM_HAVE_NCCL. Without a toolkit it says so and changes nothing: the
# backend's stub (runtime/lib/CUDA) and the CPU tests still build.
option(MLLM_ENABLE_CUDA "Build the CUDA backend where the toolkit is found" ON)
set(MLLM_HAVE_CUDA OFF)
set(MLLM_HAVE_NCCL OFF)
if(NOT MLLM_ENABLE_CUDA)
  message(STATUS "CUDA backend not built: MLLM_ENABLE_CUDA is OFF")
  return()
endif()

include(CheckLanguage)
if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "CUDA backend not built: no CUDA compiler (nvcc) found")
  return()
endif()
# Ampere and Hopper by default ("native" fails on a machine without a GPU);
# -DCMAKE_CUDA_ARCHITECTURES=90 (or "80;90;100") overrides.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING
    "GPU architectures the CUDA backend is compiled for")
endif()
# The CUDA targets link CUDA::cudart (shared); without this, .cu targets
# would also pull in the static runtime.
set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
set(MLLM_HAVE_CUDA ON)

find_library(MLLM_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
find_path(MLLM_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
if(MLLM_NCCL_LIBRARY AND MLLM_NCCL_INCLUDE_DIR)
  set(MLLM_HAVE_NCCL ON)
  message(STATUS "CUDA backend: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
    "architectures ${CMAKE_CUDA_ARCHITECTURES}, NCCL ${MLLM_NCCL_LIBRARY}")
else()
  message(STATUS "CUDA backend: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
    "architectures ${CMAKE_CUDA_ARCHITECTURES}; no NCCL, so no NCCL "
    "communicator")
endif()

if(NOT "cuda" IN_LIST MLLM_SKIP_DIRS)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR} ${CMAKE_BINARY_DIR}/kernels/lib/cuda)
endif()
# The host twin of the kernel library (plain C++ on the CPU kernels).
if(NOT "cudahost" IN_LIST MLLM_SKIP_DIRS AND TARGET MLLMKernelsCPU AND
   TARGET MLLMAttentionCPU)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../cudahost
    ${CMAKE_BINARY_DIR}/kernels/lib/cudahost)
endif()
# bench/CMakeLists.txt knows nothing of CUDA; the GPU bench joins here.
if((NOT DEFINED MLLM_BUILD_BENCH OR MLLM_BUILD_BENCH) AND
   NOT "gpu" IN_LIST MLLM_SKIP_DIRS)
  add_subdirectory(${PROJECT_SOURCE_DIR}/bench/gpu
    ${CMAKE_BINARY_DIR}/bench/gpu)
endif()
