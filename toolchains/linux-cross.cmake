# Shared by the per-target toolchain files: compilers, sysroot search rules and the qemu
# emulator that ctest (and gtest discovery) run the test binaries with.
set(CMAKE_C_COMPILER ${AMSKV_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${AMSKV_CROSS_TRIPLE}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${AMSKV_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
string(REGEX REPLACE "-.*" "" _qemu_arch ${AMSKV_CROSS_TRIPLE})
if(_qemu_arch STREQUAL "arm")
  set(_qemu_arch arm)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-${_qemu_arch};-L;/usr/${AMSKV_CROSS_TRIPLE})
