# gc_markers.cmake - included from tests/CMakeLists.txt.
#
# test_gc again with four markers (more than CI's two cores, so markers
# wait for work, share it and finish in every order) and with the
# collecting thread marking alone.
if(TARGET test_gc)
  add_test(NAME test_gc_markers4 COMMAND test_gc)
  set_tests_properties(test_gc_markers4 PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=gc_markers=4")
  add_test(NAME test_gc_markers1 COMMAND test_gc)
  set_tests_properties(test_gc_markers1 PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=gc_markers=1")
endif()
