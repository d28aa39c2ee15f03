# guile.cmake - included from tests/CMakeLists.txt.
#
# guile: Debian's Guile 3.0, a library built against bdwgc's libgc.so.1,
# runs a Scheme program of garbage with libmheap.so preloaded and must
# print what it prints on bdwgc (tests/guile/run.sh; guile-3.0 is
# installed with apt-get when missing, and the test skipped when that
# fails).  Not under sanitizers: libmheap.so replaces malloc, which the
# sanitizer runtimes do too.
if(MHEAP_SANITIZE)
  return()
endif()
add_test(NAME guile
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/guile/run.sh $<TARGET_FILE:mheap>
    ${CMAKE_CURRENT_LIST_DIR}/guile ${CMAKE_CURRENT_BINARY_DIR}/guile)
set_tests_properties(guile PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
