# pageheap_model.cmake - included from tests/CMakeLists.txt.
#
# test_pageheap_model runs 1,000,000 operations with up to 64k live pages by
# default (a few seconds in a release build, about ten under ASan+UBSan).
# Under TSan it is several times slower and TSan's shadow memory grows with
# the heap (about 2.5 GiB for the default cap), so fewer operations and a
# smaller cap there.
if(TARGET test_pageheap_model AND MHEAP_SANITIZE MATCHES "thread")
  set_tests_properties(test_pageheap_model PROPERTIES
    ENVIRONMENT "MHEAP_TEST_OPS=250000;MHEAP_TEST_MAX_PAGES=16384")
endif()
