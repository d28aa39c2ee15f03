# gc_scan_malloc.cmake - included from tests/CMakeLists.txt.
#
# test_gc_scan_malloc (tests/test_gc_scan_malloc.c) runs twice: as
# test_gc_scan_malloc with the option gc_scan_malloc on, and as
# test_gc_scan_malloc_off (argument "off") with it off.  Options are read
# from the environment at load, so each entry sets MHEAP_OPTIONS, and the
# program checks it sees the value its argument expects.
if(TARGET test_gc_scan_malloc)
  set_tests_properties(test_gc_scan_malloc PROPERTIES
    ENVIRONMENT "MHEAP_OPTIONS=gc_scan_malloc=1")
  add_test(NAME test_gc_scan_malloc_off COMMAND test_gc_scan_malloc off)
  set_tests_properties(test_gc_scan_malloc_off PROPERTIES
    ENVIRONMENT "MHEAP_OPTIONS=gc_scan_malloc=0" TIMEOUT 600)
endif()
