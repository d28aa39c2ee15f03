# gc_kinds.cmake - included from tests/CMakeLists.txt.
#
# test_gc_kinds again with four markers, so mark procedures run on marker
# threads, several at once.
if(TARGET test_gc_kinds)
  add_test(NAME test_gc_kinds_markers4 COMMAND test_gc_kinds)
  set_tests_properties(test_gc_kinds_markers4 PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=gc_markers=4")
endif()
