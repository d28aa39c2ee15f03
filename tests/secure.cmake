# secure.cmake - included from tests/CMakeLists.txt.
#
# test_secure (tests/secure/test_secure.c) is linked with
# mheap_secure_static, libmheap-secure.a with the libc overrides: malloc,
# free, ... are the secure build's.  Each row is its own CTest,
# secure_<row>, running `test_secure <row>`; the misuse rows check each
# catch's message in a child process.
#
# Skipped when MHEAP_SANITIZE is set, as the contract tests are: ASan and
# TSan replace malloc themselves (and install their own SIGSEGV handlers),
# and a program that also overrides malloc gets two allocators in conflict.

if(MHEAP_SANITIZE)
  message(STATUS "mheap: test_secure skipped (MHEAP_SANITIZE=${MHEAP_SANITIZE} brings its own malloc)")
  return()
endif()

add_executable(test_secure ${CMAKE_CURRENT_LIST_DIR}/secure/test_secure.c)
target_link_libraries(test_secure PRIVATE mheap_secure_static pthread)
target_include_directories(test_secure PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include
                                               ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_secure PRIVATE MHEAP_SECURE=1)
# free(p); free(p) and writes past the end are the point: no folding.
target_compile_options(test_secure PRIVATE -fno-builtin)

foreach(row overflow underflow guard uaf_large uaf_small uaf_waiting double_free exec chain chain_recover chain_ignored race_neighbour race_resize zeroed
            usable reuse no_exec protect_fail)
  add_test(NAME secure_${row} COMMAND test_secure ${row})
  set_tests_properties(secure_${row} PROPERTIES TIMEOUT 300)
endforeach()
