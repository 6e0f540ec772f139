# LlmsysPlugin.cmake — llmsys_add_plugin() and llmsys_add_plugin_test(), the
# one definition used both in the llmsys tree (the top-level CMakeLists.txt
# includes this file) and by out-of-tree plugins (`cmake --install` copies it
# into lib/cmake/llmsys/, and find_package(llmsys) includes it).
#
#   find_package(llmsys 1.1 REQUIRED)
#   llmsys_add_plugin(my_plugin SOURCES my_plugin.cc)
#   llmsys_add_plugin_test(my_plugin_check PLUGIN my_plugin)
#
# What differs between the two uses lives in variables the includer sets,
# read when llmsys_add_plugin is called:
#   LLMSYS_PLUGIN_OUTPUT_DIR      the default OUTPUT_DIR (unset: the binary
#                                 folder of the CMakeLists.txt that calls it)
#   LLMSYS_PLUGIN_LINK_LIBRARIES  more targets every plugin links privately
#                                 (in the tree: llmsys_warnings, -Werror)
#   LLMSYS_PLUGIN_INSTALL_DIR     when set, plugins built into the default
#                                 folder are installed there (the built-in
#                                 plugins, by `cmake --install`)
#   LLMSYS_EXECUTABLE             the llmsys command, for
#                                 llmsys_add_plugin_test
include_guard(GLOBAL)

# llmsys_add_plugin(NAME SOURCES src... [OUTPUT_DIR dir] [ABI_TARGET target])
#
# Builds one plugin: a MODULE library NAME.so that includes only the ABI
# (and the header-only SDK), exports only its entry table (hidden visibility
# for everything else) and never links against the host library: it is
# linked with -Wl,--no-undefined, so a plugin that expects a symbol from the
# host fails to link instead of failing to load. C sources build as C11, C++
# as C++20 (the SDK needs it). ABI_TARGET names the headers to build against
# (default llmsys::abi; tests/abi builds against a frozen copy of ABI 1.0).
function(llmsys_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR;ABI_TARGET" "SOURCES" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS OR NOT ARG_SOURCES)
    message(FATAL_ERROR
      "llmsys_add_plugin(${name} ${ARGN}): expected "
      "llmsys_add_plugin(NAME SOURCES src... [OUTPUT_DIR dir])")
  endif()
  if(NOT ARG_ABI_TARGET)
    set(ARG_ABI_TARGET llmsys::abi)
  endif()
  if(NOT TARGET ${ARG_ABI_TARGET})
    message(FATAL_ERROR
      "llmsys_add_plugin(${name}): no target ${ARG_ABI_TARGET}; call "
      "find_package(llmsys) first")
  endif()
  set(default_dir FALSE)
  if(NOT ARG_OUTPUT_DIR)
    set(default_dir TRUE)
    if(LLMSYS_PLUGIN_OUTPUT_DIR)
      set(ARG_OUTPUT_DIR ${LLMSYS_PLUGIN_OUTPUT_DIR})
    else()
      set(ARG_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
    endif()
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_ABI_TARGET}
                                        ${LLMSYS_PLUGIN_LINK_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_STANDARD 11
    C_STANDARD_REQUIRED ON
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
  # Every symbol resolved at link time: a plugin must not expect the host to
  # provide any.
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  if(default_dir AND LLMSYS_PLUGIN_INSTALL_DIR)
    install(TARGETS ${name} LIBRARY DESTINATION ${LLMSYS_PLUGIN_INSTALL_DIR})
  endif()
endfunction()

# llmsys_add_plugin_test(NAME PLUGIN target [REFERENCE file.so])
#
# A CTest test that runs `llmsys plugins check` on the plugin `target`
# builds: it loads the file alone, creates each component with its default
# parameters and runs every operator through the conformance suite against
# the reference implementation (or REFERENCE). Passes when the command exits
# with 0.
function(llmsys_add_plugin_test name)
  cmake_parse_arguments(ARG "" "PLUGIN;REFERENCE" "" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS OR NOT ARG_PLUGIN)
    message(FATAL_ERROR
      "llmsys_add_plugin_test(${name} ${ARGN}): expected "
      "llmsys_add_plugin_test(NAME PLUGIN target [REFERENCE file.so])")
  endif()
  if(NOT LLMSYS_EXECUTABLE)
    message(FATAL_ERROR
      "llmsys_add_plugin_test(${name}): LLMSYS_EXECUTABLE is not set (it "
      "comes with find_package(llmsys))")
  endif()
  set(reference)
  if(ARG_REFERENCE)
    set(reference --reference ${ARG_REFERENCE})
  endif()
  add_test(NAME ${name}
           COMMAND ${LLMSYS_EXECUTABLE} plugins check
                   $<TARGET_FILE:${ARG_PLUGIN}> ${reference})
endfunction()
