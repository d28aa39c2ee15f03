# gc_races.cmake - included from tests/CMakeLists.txt.
#
# test_gc_races (tests/test_gc_races.c) loads and unloads gc_race_lib, a
# module with 8 MiB of data and bss, while it collects; it runs with two
# markers so that marker threads start even on one CPU.  A hang fails by
# the timeout.
if(TARGET test_gc_races)
  add_library(gc_race_lib MODULE ${CMAKE_CURRENT_SOURCE_DIR}/gc_race_lib.c)
  add_dependencies(test_gc_races gc_race_lib)
  target_link_libraries(test_gc_races PRIVATE ${CMAKE_DL_LIBS})
  target_compile_definitions(test_gc_races PRIVATE GC_RACE_LIB="$<TARGET_FILE:gc_race_lib>")
  set_tests_properties(test_gc_races PROPERTIES
    ENVIRONMENT "MHEAP_OPTIONS=gc_markers=2" TIMEOUT 300)
endif()
