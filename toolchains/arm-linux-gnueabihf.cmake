# Cross-compile for 32-bit ARMv7 with hard-float NEON (Debian's g++-arm-linux-gnueabihf).
# The NEON kernels are aarch64-only for now, so this build runs the scalar reference.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)
set(AMSKV_CROSS_TRIPLE arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
