# gccompat.cmake - included from tests/CMakeLists.txt.
#
# gc_compat: tests/gccompat/compat.c (with compat_debug.c, built with
# GC_DEBUG) is a program written against bdwgc's gc.h.  It is built here
# against mheap's include/gc.h and libmheap.so, and by
# tests/gccompat/run.sh against Debian's libgc-dev (installed with apt-get
# when missing; the test is skipped when that fails); the script runs both
# and compares their outputs byte for byte, then runs the bdwgc build
# again with libmheap.so preloaded (the same output, from mheap's
# collector).
#
# Skipped when MHEAP_SANITIZE is set, as the preload and contract tests
# are: libmheap.so replaces malloc, which the sanitizer runtimes do too.
# (test_gc_boehm, linked with mheap_core, runs the same interface under
# the sanitizers.)

if(MHEAP_SANITIZE)
  message(STATUS "mheap: gc_compat skipped (MHEAP_SANITIZE=${MHEAP_SANITIZE} brings its own malloc)")
  return()
endif()

find_package(Threads REQUIRED)
add_executable(mheap_gccompat ${CMAKE_CURRENT_LIST_DIR}/gccompat/compat.c
                              ${CMAKE_CURRENT_LIST_DIR}/gccompat/compat_debug.c)
# (mheap's include/ comes with the library: its gc.h is the one found)
target_link_libraries(mheap_gccompat PRIVATE mheap Threads::Threads ${CMAKE_DL_LIBS})
target_compile_options(mheap_gccompat PRIVATE -O2)
add_test(NAME gc_compat
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/gccompat/run.sh $<TARGET_FILE:mheap_gccompat>
    ${CMAKE_CURRENT_LIST_DIR}/gccompat ${CMAKE_CURRENT_BINARY_DIR}/gccompat ${CMAKE_C_COMPILER}
    $<TARGET_FILE:mheap>)
set_tests_properties(gc_compat PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
