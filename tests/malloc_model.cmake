# malloc_model.cmake - included from tests/CMakeLists.txt.
#
# test_malloc_model with other seeds: the threaded mode alone with four
# slots (more threads than CI's two cores), both modes with the scavenger
# and the trim pass running every millisecond (pages released inside
# spans in use while the blocks come and go), and the threaded mode with
# no background thread (parked caches wait for the next thread or a
# trim).  In the sanitizer builds these run fewer operations.  With
# -DMHEAP_FUZZ=ON and clang as the C compiler, fuzz_malloc_model is the
# one-thread engine as a libFuzzer target
# (`build/tests/fuzz_malloc_model -max_len=4096`).
if(TARGET test_malloc_model)
  if(MHEAP_SANITIZE MATCHES "thread")
    set(MHEAP_MODEL_OPS 10000)
  elseif(MHEAP_SANITIZE)
    set(MHEAP_MODEL_OPS 20000)
  else()
    set(MHEAP_MODEL_OPS 60000)
  endif()
  add_test(NAME test_malloc_model_threads4 COMMAND test_malloc_model 7 ${MHEAP_MODEL_OPS} 4)
  add_test(NAME test_malloc_model_scavenge COMMAND test_malloc_model 11 ${MHEAP_MODEL_OPS})
  set_tests_properties(test_malloc_model_scavenge PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=scavenge_delay_ms=1")
  add_test(NAME test_malloc_model_nobg COMMAND test_malloc_model 13 ${MHEAP_MODEL_OPS} 2)
  set_tests_properties(test_malloc_model_nobg PROPERTIES ENVIRONMENT "MHEAP_OPTIONS=background=0")
  set_tests_properties(test_malloc_model_threads4 test_malloc_model_scavenge test_malloc_model_nobg
                       PROPERTIES TIMEOUT 600)
endif()
if(MHEAP_FUZZ)
  add_executable(fuzz_malloc_model ${CMAKE_CURRENT_SOURCE_DIR}/test_malloc_model.c)
  target_compile_definitions(fuzz_malloc_model PRIVATE MHEAP_MALLOC_FUZZ)
  target_compile_options(fuzz_malloc_model PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_malloc_model PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_malloc_model PRIVATE mheap_core)
  target_include_directories(fuzz_malloc_model PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
endif()
