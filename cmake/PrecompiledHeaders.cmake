#===- PrecompiledHeaders.cmake - parse the common headers once ------------===#
#
# mllm_precompile_headers(DIR) gives every C++ target under DIR with three or
# more translation units a precompiled header: the standard library's most
# used headers, and LLVM's, MLIR's and GoogleTest's for the targets that
# link them (a header of a library not linked can leave a symbol undefined).
# Parsing them was a third of most files' compile time (RankMap.cpp 6.3 s,
# 4.4 s with MLIR's headers precompiled; the runtime's BatchSplit.cpp 1.7 s,
# 1.0 s), and CI's 30 minutes are mostly the two builds: CI's main build
# went from 517 s to 346 s. MLLM_PRECOMPILE_HEADERS=OFF turns it off, to
# check that every file includes what it uses.
#
# A file with options or definitions of its own (-fexceptions, a path) keeps
# to its own includes: clang refuses a header precompiled with other
# language options.
#
#===----------------------------------------------------------------------===#

set(MLLM_PCH_STD <algorithm> <cstdint> <cstring> <functional> <map> <memory>
  <optional> <set> <string> <unordered_map> <utility> <vector>)
set(MLLM_PCH_LLVM <llvm/ADT/ArrayRef.h> <llvm/ADT/DenseMap.h>
  <llvm/ADT/STLExtras.h> <llvm/ADT/SmallVector.h> <llvm/ADT/StringExtras.h>
  <llvm/ADT/StringRef.h> <llvm/Support/Error.h>
  <llvm/Support/FormatVariadic.h> <llvm/Support/raw_ostream.h>)
set(MLLM_PCH_MLIR <mlir/IR/Builders.h> <mlir/IR/BuiltinOps.h>
  <mlir/IR/Diagnostics.h> <mlir/IR/MLIRContext.h> <mlir/IR/OpImplementation.h>
  <mlir/Pass/Pass.h> <mlir/Pass/PassManager.h>)
set(MLLM_PCH_GTEST <gtest/gtest.h>)

# _mllm_linked(TARGET LLVM MLIR GTEST): whether TARGET links LLVM, MLIR and
# GoogleTest, directly or through our libraries.
function(_mllm_linked target llvm_out mlir_out gtest_out)
  set(todo ${target})
  set(seen)
  set(llvm OFF)
  set(mlir OFF)
  set(gtest OFF)
  while(todo)
    list(POP_FRONT todo name)
    if(name IN_LIST seen OR NOT TARGET ${name})
      continue()
    endif()
    list(APPEND seen ${name})
    if(name MATCHES "^LLVM")
      set(llvm ON)
    elseif(name MATCHES "^MLIR")
      set(mlir ON)
    elseif(name MATCHES "^GTest::")
      set(gtest ON)
    endif()
    get_target_property(imported ${name} IMPORTED)
    if(imported)
      continue()
    endif()
    # add_mlir_library's sources compile in obj.NAME, its links are NAME's.
    if(name MATCHES "^obj\\.(.+)$")
      list(APPEND todo ${CMAKE_MATCH_1})
    endif()
    foreach(property LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(libraries ${name} ${property})
      if(libraries)
        list(APPEND todo ${libraries})
      endif()
    endforeach()
  endwhile()
  set(${llvm_out} ${llvm} PARENT_SCOPE)
  set(${mlir_out} ${mlir} PARENT_SCOPE)
  set(${gtest_out} ${gtest} PARENT_SCOPE)
endfunction()

function(_mllm_precompile_target target)
  get_target_property(type ${target} TYPE)
  if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY)$")
    return()
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(units 0)
  foreach(source ${sources})
    # CMake would give C and CUDA files the C++ headers too.
    if(source MATCHES "\\.(c|cu)$")
      return()
    elseif(NOT source MATCHES "\\.cpp$")
      continue()
    endif()
    if(NOT IS_ABSOLUTE ${source})
      set(source ${source_dir}/${source})
    endif()
    get_source_file_property(options ${source} TARGET_DIRECTORY ${target}
      COMPILE_OPTIONS)
    get_source_file_property(definitions ${source} TARGET_DIRECTORY ${target}
      COMPILE_DEFINITIONS)
    if(options OR definitions)
      set_source_files_properties(${source} TARGET_DIRECTORY ${target}
        PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    else()
      math(EXPR units "${units} + 1")
    endif()
  endforeach()
  if(units LESS 3)
    return()
  endif()
  _mllm_linked(${target} llvm mlir gtest)
  set(headers ${MLLM_PCH_STD})
  # MLIR's libraries link LLVM's.
  if(llvm OR mlir)
    list(APPEND headers ${MLLM_PCH_LLVM})
  endif()
  if(mlir)
    list(APPEND headers ${MLLM_PCH_MLIR})
  endif()
  if(gtest)
    list(APPEND headers ${MLLM_PCH_GTEST})
  endif()
  target_precompile_headers(${target} PRIVATE ${headers})
endfunction()

function(mllm_precompile_headers dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    _mllm_precompile_target(${target})
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir ${subdirs})
    mllm_precompile_headers(${subdir})
  endforeach()
endfunction()
