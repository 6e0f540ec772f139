# LlmsysInstall.cmake — what `cmake --install BUILD --prefix PREFIX` puts
# where (the top-level CMakeLists.txt includes it after every target exists):
#
#   PREFIX/bin/llmsys                       the command
#   PREFIX/lib/llmsys/plugins/*.so          the built-in plugins (installed by
#                                           llmsys_add_plugin, see
#                                           LlmsysPlugin.cmake); the command
#                                           finds them at <bin>/../lib/...
#   PREFIX/include/llmsys/*.h, sdk.hpp      the C ABI and the C++ SDK
#   PREFIX/lib/cmake/llmsys/                the CMake package: llmsysConfig,
#                                           llmsysConfigVersion, the
#                                           llmsys::abi target, LlmsysPlugin
#
# The layout is fixed ("lib", not CMAKE_INSTALL_LIBDIR): the command looks
# for its plugins at <bin>/../lib/llmsys/plugins.
include(CMakePackageConfigHelpers)

set(LLMSYS_INSTALL_BINDIR bin)
set(LLMSYS_INSTALL_PLUGINDIR lib/llmsys/plugins)
set(LLMSYS_INSTALL_CMAKEDIR lib/cmake/llmsys)

# The package's version is the ABI's, read from the header that defines it so
# the two cannot drift apart (and re-read when the header changes).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/abi/llmsys/version.h)
file(STRINGS ${PROJECT_SOURCE_DIR}/abi/llmsys/version.h llmsys_abi_defines
     REGEX "^#define LLMSYS_ABI_VERSION_(MAJOR|MINOR) [0-9]+$")
string(REGEX REPLACE ".*MAJOR ([0-9]+);.*" "\\1" llmsys_abi_major
       "${llmsys_abi_defines};")
string(REGEX REPLACE ".*MINOR ([0-9]+);.*" "\\1" llmsys_abi_minor
       "${llmsys_abi_defines};")
if(NOT llmsys_abi_major MATCHES "^[0-9]+$" OR
   NOT llmsys_abi_minor MATCHES "^[0-9]+$")
  message(FATAL_ERROR "abi/llmsys/version.h: cannot read "
                      "LLMSYS_ABI_VERSION_MAJOR and _MINOR")
endif()
set(LLMSYS_ABI_VERSION ${llmsys_abi_major}.${llmsys_abi_minor})

install(TARGETS llmsys RUNTIME DESTINATION ${LLMSYS_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/abi/llmsys DESTINATION include
        FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")
install(TARGETS llmsys_abi EXPORT llmsysTargets)
install(EXPORT llmsysTargets NAMESPACE llmsys::
        DESTINATION ${LLMSYS_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/llmsysConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/llmsysConfig.cmake
  INSTALL_DESTINATION ${LLMSYS_INSTALL_CMAKEDIR}
  PATH_VARS LLMSYS_INSTALL_BINDIR LLMSYS_INSTALL_PLUGINDIR)
# SameMajorVersion: a plugin asking for 1.1 accepts 1.1, 1.2, ... but not
# 1.0 (no call_couplings) or 2.x (another ABI) — the loader's rule.
write_basic_package_version_file(
  ${CMAKE_BINARY_DIR}/cmake/llmsysConfigVersion.cmake
  VERSION ${LLMSYS_ABI_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/llmsysConfig.cmake
              ${CMAKE_BINARY_DIR}/cmake/llmsysConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/LlmsysPlugin.cmake
        DESTINATION ${LLMSYS_INSTALL_CMAKEDIR})
