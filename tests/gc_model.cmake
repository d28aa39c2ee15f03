# gc_model.cmake - included from tests/CMakeLists.txt.
#
# test_gc_model with other seeds, with four markers (more than CI's two
# cores) and with the collecting thread marking alone.  With
# -DMHEAP_FUZZ=ON and clang as the C compiler, fuzz_gc_model is the same
# engine as a libFuzzer target (`build/tests/fuzz_gc_model -max_len=4096`).
if(TARGET test_gc_model)
  add_test(NAME test_gc_model_markers4 COMMAND test_gc_model 7)
  set_tests_properties(test_gc_model_markers4 PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=gc_markers=4")
  add_test(NAME test_gc_model_markers1 COMMAND test_gc_model 11)
  set_tests_properties(test_gc_model_markers1 PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=gc_markers=1")
endif()
option(MHEAP_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(MHEAP_FUZZ)
  add_executable(fuzz_gc_model ${CMAKE_CURRENT_SOURCE_DIR}/test_gc_model.c)
  target_compile_definitions(fuzz_gc_model PRIVATE MHEAP_GC_FUZZ)
  target_compile_options(fuzz_gc_model PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_gc_model PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_gc_model PRIVATE mheap_core)
  target_include_directories(fuzz_gc_model PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
endif()
