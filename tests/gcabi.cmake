# gcabi.cmake - included from tests/CMakeLists.txt.
#
# Binary compatibility with bdwgc: programs built against Debian's
# libgc.so.1 (bdwgc 8.2), unchanged, with libmheap.so preloaded (scripts
# in tests/gcabi/, installing libgc-dev and w3m with apt-get when missing;
# skipped, exit 77, when that fails):
#   gc_abi_symbols  libmheap.so defines every public function and variable
#                   libgc.so.1 exports (lists of the internal ones and of
#                   those not built yet in tests/gcabi/symbols.sh)
#   gc_abi          tests/gcabi/vars.c (bdwgc's variables written and read
#                   directly: the same output both ways) and env.c (bdwgc's
#                   environment variables)
#   gc_abi_w3m      w3m renders a generated page: the same with bdwgc, with
#                   the preload and under `mheap run --gc`
# Skipped when MHEAP_SANITIZE is set, as the other preload tests are.

if(MHEAP_SANITIZE)
  message(STATUS "mheap: gc_abi tests skipped (MHEAP_SANITIZE=${MHEAP_SANITIZE} brings its own malloc)")
  return()
endif()

set(gcabi_dir ${CMAKE_CURRENT_LIST_DIR}/gcabi)
add_test(NAME gc_abi_symbols
  COMMAND sh ${gcabi_dir}/symbols.sh $<TARGET_FILE:mheap>
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
add_test(NAME gc_abi
  COMMAND sh ${gcabi_dir}/run.sh $<TARGET_FILE:mheap> ${gcabi_dir}
    ${CMAKE_CURRENT_BINARY_DIR}/gcabi ${CMAKE_C_COMPILER})
add_test(NAME gc_abi_w3m
  COMMAND sh ${gcabi_dir}/w3m.sh $<TARGET_FILE:mheap> ${PROJECT_BINARY_DIR}/tools/mheap
    ${gcabi_dir} ${CMAKE_CURRENT_BINARY_DIR}/gcabi-w3m)
set_tests_properties(gc_abi_symbols gc_abi gc_abi_w3m PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
