# llmsys_add_plugin(NAME SOURCES src... [OUTPUT_DIR dir])
#
# Builds one plugin: a MODULE library NAME.so that includes only the ABI
# (and the header-only SDK), exports only its entry table (hidden visibility
# for everything else) and never links against the host library. It lands in
# the built-in plugin folder unless OUTPUT_DIR says otherwise.
function(llmsys_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${LLMSYS_PLUGIN_OUTPUT_DIR})
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE llmsys::abi llmsys_warnings)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
  # Every symbol resolved at link time: a plugin must not expect the host to
  # provide any.
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
endfunction()
