# contract.cmake - included from tests/CMakeLists.txt.
#
# contract (tests/contract/contract.c) and cxx_new (tests/contract/cxx_new.cpp)
# are linked with mheap_static, libmheap.a WITH the libc and C++ overrides:
# malloc, free, operator new, ... are mheap's in these programs.  Each row of
# the contract is its own CTest, contract_<row>, running `contract <row>`
# (`contract --list` prints the rows).
#
# Skipped when MHEAP_SANITIZE is set: ASan and TSan replace malloc
# themselves, and a program that also overrides it gets two allocators in
# conflict.  The mh_* API tests (tests/test_*.c, linked with mheap_core)
# still run under the sanitizers.

if(MHEAP_SANITIZE)
  message(STATUS "mheap: contract and cxx_new tests skipped (MHEAP_SANITIZE=${MHEAP_SANITIZE} brings its own malloc)")
  return()
endif()

add_executable(contract ${CMAKE_CURRENT_LIST_DIR}/contract/contract.c)
target_link_libraries(contract PRIVATE mheap_static pthread)
# Calls such as free(p); free(p) or malloc(SIZE_MAX) are the point here:
# keep the compiler from folding or eliding them.
target_compile_options(contract PRIVATE -fno-builtin)

set(MHEAP_CONTRACT_ROWS
  free_null
  free_errno
  double_free_small
  double_free_large
  double_free_thread
  corrupted_free
  interior
  never_handed_out
  foreign
  free_sized
  free_sized_misuse
  huge
  huge_below_ptrdiff
  overflow
  bad_align
  posix_memalign
  malloc_zero
  realloc_zero
  oom
  fork_threads
  fork_stdio
  thread_key_late
  many_threads
)
foreach(row ${MHEAP_CONTRACT_ROWS})
  add_test(NAME contract_${row} COMMAND contract ${row})
  set_tests_properties(contract_${row} PROPERTIES TIMEOUT 120)
endforeach()

add_executable(cxx_new ${CMAKE_CURRENT_LIST_DIR}/contract/cxx_new.cpp)
set_target_properties(cxx_new PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_link_libraries(cxx_new PRIVATE mheap_static)
target_compile_options(cxx_new PRIVATE -fno-builtin)
add_test(NAME cxx_new COMMAND cxx_new)
set_tests_properties(cxx_new PROPERTIES TIMEOUT 120)
